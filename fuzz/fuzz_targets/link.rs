//! A link end fed arbitrary frames (with a valid CRC, so they get past the
//! check) between its own sends and transmits: the sequence, ACK, NAK,
//! replay and credit logic must never panic, and what it transmits must
//! always be a frame it would accept itself.
#![no_main]

use fabric::crc_of;
use fabric::frame::{Frame, ETHERTYPE, HEADER_LEN, VERSION};
use fabric::link::{Link, LinkConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = LinkConfig {
        replay_slots: 4,
        flush_deadline: 2,
        replay_timeout: 7,
        update_interval: 3,
        credits: [4, 16, 4, 16, 4, 16],
        // Down after 40 ticks of silence: inputs long enough go down, and
        // frames after that are checked and ignored.
        down_after: 40,
        ..LinkConfig::default()
    };
    let mut link = Link::new(config).expect("a valid configuration");
    let tlp = [0x40, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0x10, 0, 1, 2, 3, 4];
    let mut out = vec![0u8; 1514];
    // Chunks separated by 0xff are frames; their header is made right and a
    // CRC appended.
    for (now, chunk) in data.split(|&b| b == 0xff).enumerate() {
        let now = now as u64;
        let _ = link.try_send(&tlp, now);
        if chunk.len() >= HEADER_LEN {
            let mut frame = chunk.to_vec();
            frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
            frame[14] = VERSION;
            // From its peer to it, mostly: any other pair of nodes makes a
            // frame of another link, which is only counted.
            if chunk[18] & 0x0f != 0 {
                frame[18..20].copy_from_slice(&config.remote_node.to_be_bytes());
                frame[20..22].copy_from_slice(&config.local_node.to_be_bytes());
            }
            let crc = crc_of(&frame);
            frame.extend_from_slice(&crc.to_be_bytes());
            let _ = link.receive(&frame, now, |t| assert!(t.len() >= 12));
        }
        while let Some(n) = link.poll_transmit(now, &mut out) {
            assert!(Frame::new_checked(&out[..n], ETHERTYPE).is_ok());
        }
        if link.check_down(now) {
            assert!(link.is_down() && link.poll_transmit(now, &mut out).is_none());
        }
    }
});
