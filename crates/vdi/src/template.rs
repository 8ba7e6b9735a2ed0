//! Endpoint templates (`configs/templates/NAME.toml`): the configuration
//! space a function starts from (an `lspci -xxx`/`-xxxx` dump), its BAR
//! sizes, and the registers of its BARs with their access classes.
//!
//! ```toml
//! config = "../devices/82576-pf.lspci"   # relative to this file, inside the
//!                                        # topology's directory
//! bars = [{ index = 0, size = "0x20000" }, { index = 3, size = "0x4000" }]
//! rom_size = "0x20000"                   # optional
//!
//! [[register]]
//! name = "CTRL"
//! bar = 0
//! offset = "0x0000"
//! width = 4                              # 1, 2, 4 or 8
//! reset = "0x0"
//! access = "shadowable"                  # read_only, w1c, read_side_effect, doorbell
//! ```

use crate::config::{BarSizes, ConfigSpace};
use crate::registers::{Access, Register, RegisterFile};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a template: the file, the key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The file.
    pub file: PathBuf,
    /// The key path, like `register[3].access`.
    pub key: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

impl std::error::Error for TemplateError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    config: String,
    #[serde(default)]
    bars: Vec<BarSpec>,
    rom_size: Option<String>,
    #[serde(default)]
    register: Vec<RegisterSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BarSpec {
    index: usize,
    size: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterSpec {
    name: String,
    bar: u8,
    offset: String,
    width: u8,
    #[serde(default)]
    reset: Option<String>,
    access: String,
}

/// A loaded template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The dump's header line.
    pub device: String,
    /// The configuration space with its access rules.
    pub config: ConfigSpace,
    /// The BAR registers at their reset values.
    pub registers: RegisterFile,
}

/// The directory `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn number(s: &str) -> Option<u64> {
    let t = s.replace('_', "");
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// The templates built into the program, with the dumps they name: the
/// embedded default topology runs from them wherever the program is.
const BUILTIN: &[(&str, &str, &str, &str)] = &[(
    "nic",
    include_str!("../../../configs/templates/nic.toml"),
    "../devices/82576-pf.lspci",
    include_str!("../../../configs/devices/82576-pf.lspci"),
)];

impl Template {
    /// Reads a template and the dump it names; every problem is returned.
    /// The dump may be anywhere the template's `config` says (see
    /// [`load_within`](Self::load_within) for files from users).
    pub fn load(path: &Path) -> Result<Template, Vec<TemplateError>> {
        let dir = parent(path);
        Template::load_within(path, &parent(&dir))
    }

    /// Reads a template and the dump it names, refusing a dump outside
    /// `root` (the topology's directory): a template names a file of its
    /// own fabric, not any file the program can read.
    pub fn load_within(path: &Path, root: &Path) -> Result<Template, Vec<TemplateError>> {
        let err = |key: &str, message: String| TemplateError {
            file: path.to_path_buf(),
            key: key.into(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![err("(file)", format!("cannot read: {e}"))])?;
        let dir = parent(path);
        Template::parse(path, &text, |config| {
            let dump_path = dir.join(config);
            let inside = match (dump_path.canonicalize(), root.canonicalize()) {
                (Ok(dump), Ok(root)) => dump.starts_with(root),
                (Err(e), _) => return Err(format!("cannot read {config:?}: {e}")),
                (_, Err(e)) => return Err(format!("cannot read {}: {e}", root.display())),
            };
            if Path::new(config).is_absolute() || !inside {
                return Err(format!(
                    "expected a dump inside {} (a path relative to the template), found {config:?}",
                    root.display()
                ));
            }
            std::fs::read_to_string(&dump_path).map_err(|e| format!("cannot read {config:?}: {e}"))
        })
    }

    /// A template built into the program, by name (`None`: there is none).
    pub fn builtin(name: &str) -> Option<Result<Template, Vec<TemplateError>>> {
        let &(name, text, config, dump) = BUILTIN.iter().find(|b| b.0 == name)?;
        let path = PathBuf::from(format!("(built in)/templates/{name}.toml"));
        Some(Template::parse(&path, text, |wanted| {
            if wanted == config {
                Ok(dump.to_string())
            } else {
                Err(format!("no built-in dump {wanted:?}"))
            }
        }))
    }

    /// Checks template text (`path` names it in errors), reading the dump
    /// its `config` names through `dump`.
    pub fn parse(
        path: &Path,
        text: &str,
        dump: impl FnOnce(&str) -> Result<String, String>,
    ) -> Result<Template, Vec<TemplateError>> {
        let err = |key: &str, message: String| TemplateError {
            file: path.to_path_buf(),
            key: key.into(),
            message,
        };
        let spec: Spec = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| format!("(byte {})", s.start))
                .unwrap_or_else(|| "(toml)".into());
            vec![err(&key, e.message().to_string())]
        })?;
        let mut errors = Vec::new();
        let mut sizes = BarSizes::default();
        for (i, b) in spec.bars.iter().enumerate() {
            match (b.index, number(&b.size)) {
                (index @ 0..=5, Some(size)) => sizes.bars[index] = Some(size),
                (index, Some(_)) => errors.push(err(
                    &format!("bars[{i}].index"),
                    format!("expected a BAR index 0..=5, found {index}"),
                )),
                (_, None) => errors.push(err(
                    &format!("bars[{i}].size"),
                    format!("expected a number (decimal or 0x hex), found {:?}", b.size),
                )),
            }
        }
        if let Some(rom) = &spec.rom_size {
            match number(rom) {
                Some(size) => sizes.rom = Some(size),
                None => errors.push(err(
                    "rom_size",
                    format!("expected a number (decimal or 0x hex), found {rom:?}"),
                )),
            }
        }
        let mut registers = Vec::new();
        for (i, r) in spec.register.iter().enumerate() {
            let key = |k: &str| format!("register[{i}].{k}");
            let offset = number(&r.offset);
            if offset.is_none() || offset.is_some_and(|o| o > u32::MAX as u64) {
                errors.push(err(
                    &key("offset"),
                    format!(
                        "expected a 32-bit number (decimal or 0x hex), found {:?}",
                        r.offset
                    ),
                ));
            }
            let reset = match &r.reset {
                None => Some(0),
                Some(s) => {
                    let v = number(s);
                    if v.is_none() {
                        errors.push(err(
                            &key("reset"),
                            format!("expected a number (decimal or 0x hex), found {s:?}"),
                        ));
                    }
                    v
                }
            };
            let access = Access::from_name(&r.access);
            if access.is_none() {
                errors.push(err(
                    &key("access"),
                    format!(
                        "expected shadowable, read_only, w1c, read_side_effect or doorbell, found {:?}",
                        r.access
                    ),
                ));
            }
            if let (Some(offset), Some(reset), Some(access)) = (offset, reset, access) {
                registers.push(Register {
                    name: r.name.clone(),
                    bar: r.bar,
                    offset: offset as u32,
                    width: r.width,
                    reset,
                    access,
                });
            }
        }
        let registers = match RegisterFile::new(registers) {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(err("register", e.to_string()));
                None
            }
        };
        let config = &spec.config;
        let dump = dump(config)
            .and_then(|t| crate::lspci::parse(&t).map_err(|e| format!("{config:?}: {e}")));
        let (device, config) = match dump {
            Ok(d) => match ConfigSpace::new(&d.bytes, sizes) {
                Ok(c) => (d.header, Some(c)),
                Err(e) => {
                    errors.push(err("config", e.to_string()));
                    (d.header, None)
                }
            },
            Err(m) => {
                errors.push(err("config", m));
                (String::new(), None)
            }
        };
        match (config, registers) {
            (Some(config), Some(registers)) if errors.is_empty() => Ok(Template {
                device,
                config,
                registers,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/templates/nic.toml"
        ))
    }

    #[test]
    fn the_shipped_template_loads() {
        let t = Template::load(&shipped()).unwrap();
        assert!(t.device.contains("82576"), "{}", t.device);
        assert_eq!(t.registers.registers().len(), 19);
        assert_eq!(t.config.sizes().bars[3], Some(0x4000));
        assert_eq!(t.config.msix().unwrap().table_size, 10);
    }

    #[test]
    fn every_problem_names_file_and_key() {
        let dir = std::env::temp_dir().join(format!("vdi-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string(shipped())
            .unwrap()
            .replace(
                "../devices/82576-pf.lspci",
                &shipped()
                    .parent()
                    .unwrap()
                    .join("../devices/82576-pf.lspci")
                    .display()
                    .to_string(),
            )
            .replace("access = \"w1c\"", "access = \"sometimes\"")
            .replace("offset = \"0x00018\"", "offset = \"eighteen\"")
            .replace(
                "{ index = 3, size = \"0x4000\" }",
                "{ index = 7, size = \"0x4000\" }",
            );
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let errors: Vec<String> = Template::load(&path)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        let file = path.display().to_string();
        assert!(
            errors.contains(&format!(
                "{file}: bars[3].index: expected a BAR index 0..=5, found 7"
            )),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with(&format!(
                "{file}: register[2].offset: expected a 32-bit number"
            ))),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(
                |e| e.starts_with(&format!("{file}: register[12].access: expected shadowable"))
            ),
            "{errors:?}"
        );
        std::fs::write(&path, "config = \"missing.lspci\"\n").unwrap();
        let errors = Template::load(&path).unwrap_err();
        assert_eq!(errors[0].key, "config");
        assert!(errors[0].message.contains("cannot read"), "{}", errors[0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
