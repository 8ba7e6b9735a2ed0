-- Wireshark dissector for tlpfabric's link frames (docs/frame.md): the
-- fabric header (version, flags, TLP count, nodes, sequence, ACK, credits),
-- each TLP behind its length prefix with its header fields by kind
-- (requests, completions, configuration requests, messages with their
-- routing, TLP prefixes, ECRC), and the frame's CRC-32C, checked.
--
--   wireshark -X lua_script:tools/wireshark/tlpfabric.lua capture.pcap
--   tshark -X lua_script:tools/wireshark/tlpfabric.lua -r capture.pcap -V
--
-- Or copy it to the personal plugins folder (Help > About > Folders). The
-- EtherType is 0x88b5 unless a topology sets another: change ETHERTYPE below
-- (or use Decode As on the Ethernet type).
--
-- TLP fields follow the PCIe Base Specification (§2.2: common header,
-- §2.2.7 memory, I/O and AtomicOp requests, §2.2.7.1 TPH, §2.2.8 messages,
-- §2.2.9 completions). A TLP whose length disagrees with its Length field,
-- or that is shorter than its header, is flagged as malformed; so is a frame
-- whose CRC does not match.

local ETHERTYPE = 0x88b5

local bit = bit32 or bit

local fabric = Proto("tlpfabric", "tlpfabric link frame")

local flag_names = { [0] = "", [1] = "ACK", [2] = "NAK", [4] = "CREDITS", [8] = "FCS" }

local f = {
    version = ProtoField.uint8("tlpfabric.version", "Version"),
    flags = ProtoField.uint8("tlpfabric.flags", "Flags", base.HEX),
    flag_ack = ProtoField.bool("tlpfabric.flags.ack", "ACK valid", 8, nil, 0x01),
    flag_nak = ProtoField.bool("tlpfabric.flags.nak", "NAK (replay from ACK + 1)", 8, nil, 0x02),
    flag_credits = ProtoField.bool("tlpfabric.flags.credits", "Credits valid", 8, nil, 0x04),
    flag_fcs = ProtoField.bool("tlpfabric.flags.fcs", "No CRC-32C (the Ethernet FCS protects the frame)", 8, nil, 0x08),
    tlp_count = ProtoField.uint16("tlpfabric.tlp_count", "TLP count"),
    src_node = ProtoField.uint16("tlpfabric.src_node", "Source node"),
    dst_node = ProtoField.uint16("tlpfabric.dst_node", "Destination node"),
    seq = ProtoField.uint32("tlpfabric.seq", "Sequence number"),
    ack = ProtoField.uint32("tlpfabric.ack", "Cumulative ACK"),
    ph = ProtoField.uint16("tlpfabric.credits.ph", "Credits allocated: PH"),
    pd = ProtoField.uint16("tlpfabric.credits.pd", "Credits allocated: PD"),
    nph = ProtoField.uint16("tlpfabric.credits.nph", "Credits allocated: NPH"),
    npd = ProtoField.uint16("tlpfabric.credits.npd", "Credits allocated: NPD"),
    cplh = ProtoField.uint16("tlpfabric.credits.cplh", "Credits allocated: CplH"),
    cpld = ProtoField.uint16("tlpfabric.credits.cpld", "Credits allocated: CplD"),
    crc = ProtoField.uint32("tlpfabric.crc", "CRC-32C", base.HEX),
    crc_ok = ProtoField.bool("tlpfabric.crc_ok", "CRC-32C correct"),
    padding = ProtoField.bytes("tlpfabric.padding", "Padding"),

    tlp_len = ProtoField.uint16("tlpfabric.tlp.size", "TLP size (bytes)"),
    prefix = ProtoField.uint32("tlpfabric.tlp.prefix", "TLP prefix", base.HEX),
    kind = ProtoField.string("tlpfabric.tlp.kind", "Kind"),
    fmt = ProtoField.uint8("tlpfabric.tlp.fmt", "Fmt"),
    type = ProtoField.uint8("tlpfabric.tlp.type", "Type", base.HEX),
    tc = ProtoField.uint8("tlpfabric.tlp.tc", "Traffic class"),
    attr = ProtoField.uint8("tlpfabric.tlp.attr", "Attr (IDO, RO, NS)", base.HEX),
    ln = ProtoField.bool("tlpfabric.tlp.ln", "LN"),
    th = ProtoField.bool("tlpfabric.tlp.th", "TH"),
    td = ProtoField.bool("tlpfabric.tlp.td", "TD (ECRC present)"),
    ep = ProtoField.bool("tlpfabric.tlp.ep", "EP (poisoned)"),
    at = ProtoField.uint8("tlpfabric.tlp.at", "AT"),
    length_dw = ProtoField.uint16("tlpfabric.tlp.length_dw", "Length (DW)"),
    requester = ProtoField.string("tlpfabric.tlp.requester", "Requester ID"),
    completer = ProtoField.string("tlpfabric.tlp.completer", "Completer ID"),
    tag = ProtoField.uint16("tlpfabric.tlp.tag", "Tag", base.HEX),
    first_be = ProtoField.uint8("tlpfabric.tlp.first_be", "First DW BE", base.HEX),
    last_be = ProtoField.uint8("tlpfabric.tlp.last_be", "Last DW BE", base.HEX),
    steering_tag = ProtoField.uint8("tlpfabric.tlp.steering_tag", "Steering Tag", base.HEX),
    ph_hint = ProtoField.uint8("tlpfabric.tlp.ph", "Processing Hint"),
    address = ProtoField.uint64("tlpfabric.tlp.address", "Address", base.HEX),
    target = ProtoField.string("tlpfabric.tlp.target", "Target ID"),
    register = ProtoField.uint16("tlpfabric.tlp.register", "Register", base.HEX),
    routing = ProtoField.string("tlpfabric.tlp.routing", "Message routing"),
    msg_code = ProtoField.uint8("tlpfabric.tlp.msg_code", "Message code", base.HEX),
    status = ProtoField.string("tlpfabric.tlp.status", "Completion status"),
    bcm = ProtoField.bool("tlpfabric.tlp.bcm", "BCM"),
    byte_count = ProtoField.uint16("tlpfabric.tlp.byte_count", "Byte count"),
    lower_address = ProtoField.uint8("tlpfabric.tlp.lower_address", "Lower address", base.HEX),
    payload = ProtoField.bytes("tlpfabric.tlp.payload", "Data"),
    ecrc = ProtoField.uint32("tlpfabric.tlp.ecrc", "ECRC", base.HEX),
}
local field_list = {}
for _, v in pairs(f) do
    table.insert(field_list, v)
end
fabric.fields = field_list

local e_crc = ProtoExpert.new("tlpfabric.crc_bad", "Frame CRC-32C does not match",
    expert.group.CHECKSUM, expert.severity.ERROR)
local e_short = ProtoExpert.new("tlpfabric.short", "Frame too short for its header or TLPs",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_tlp = ProtoExpert.new("tlpfabric.tlp.malformed", "Malformed TLP",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_version = ProtoExpert.new("tlpfabric.version_unknown", "Unknown frame version",
    expert.group.PROTOCOL, expert.severity.WARN)
fabric.experts = { e_crc, e_short, e_tlp, e_version }

-- CRC-32C (Castagnoli, reflected 0x82F63B78, seed and final XOR all ones).
local crc_table = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if bit.band(c, 1) ~= 0 then
            c = bit.bxor(bit.rshift(c, 1), 0x82F63B78)
        else
            c = bit.rshift(c, 1)
        end
    end
    crc_table[i] = c
end

-- The frame's CRC covers its EtherType too, not the addresses
-- (docs/frame.md): the field, as Ethernet dissected it, gives its bytes back.
local eth_type = Field.new("eth.type")

local function crc32c(chunks)
    local crc = 0xffffffff
    for _, bytes in ipairs(chunks) do
        for i = 0, bytes:len() - 1 do
            local idx = bit.band(bit.bxor(crc, bytes:get_index(i)), 0xff)
            crc = bit.bxor(bit.rshift(crc, 8), crc_table[idx])
        end
    end
    return bit.bxor(crc, 0xffffffff)
end

-- The last instance of a field in this packet, as bytes.
local function last_bytes(field)
    local all = { field() }
    local fi = all[#all]
    return fi and (fi.range:bytes())
end

local function bdf(v)
    return string.format("%02x:%02x.%d", bit.rshift(v, 8), bit.band(bit.rshift(v, 3), 0x1f), bit.band(v, 7))
end

local STATUS = { [0] = "SC", [1] = "UR", [2] = "CRS", [4] = "CA" }
local ROUTING = { [0] = "to_root", [1] = "address", [2] = "id", [3] = "broadcast",
    [4] = "local", [5] = "gather" }

-- Kind name, header fields' family and whether it carries data, from Fmt and Type.
local function kind_of(fmt, typ)
    local data = bit.band(fmt, 2) ~= 0
    if typ == 0x00 then return data and "MWr" or "MRd", "memory" end
    if typ == 0x01 and not data then return "MRdLk", "memory" end
    if typ == 0x02 then return data and "IOWr" or "IORd", "memory" end
    if typ == 0x04 then return data and "CfgWr0" or "CfgRd0", "config" end
    if typ == 0x05 then return data and "CfgWr1" or "CfgRd1", "config" end
    if bit.band(typ, 0x18) == 0x10 then return data and "MsgD" or "Msg", "message" end
    if typ == 0x0a then return data and "CplD" or "Cpl", "completion" end
    if typ == 0x0b then return data and "CplDLk" or "CplLk", "completion" end
    if typ == 0x0c and data then return "FetchAdd", "memory" end
    if typ == 0x0d and data then return "Swap", "memory" end
    if typ == 0x0e and data then return "CAS", "memory" end
    return nil
end

-- One TLP at `tvb` (its own bytes); returns a one-line summary.
local function dissect_tlp(tvb, pinfo, tree)
    local size = tvb:len()
    local at = 0
    -- TLP prefixes: Fmt 100.
    while size - at >= 4 and bit.rshift(tvb(at, 1):uint(), 5) == 4 do
        tree:add(f.prefix, tvb(at, 4))
        at = at + 4
    end
    if size - at < 12 then
        tree:add_proto_expert_info(e_tlp, "TLP shorter than a 3 DW header")
        return "malformed TLP"
    end
    local b0 = tvb(at, 1):uint()
    local b1 = tvb(at + 1, 1):uint()
    local b2 = tvb(at + 2, 1):uint()
    local fmt = bit.rshift(b0, 5)
    local typ = bit.band(b0, 0x1f)
    local header = (bit.band(fmt, 1) ~= 0) and 16 or 12
    local kind, family = kind_of(fmt, typ)
    tree:add(f.fmt, tvb(at, 1), fmt)
    tree:add(f.type, tvb(at, 1), typ)
    if not kind then
        tree:add_proto_expert_info(e_tlp, string.format("no TLP kind has Fmt %d and Type 0x%02x", fmt, typ))
        return "malformed TLP"
    end
    tree:add(f.kind, tvb(at, 1), kind)
    tree:add(f.tc, tvb(at + 1, 1), bit.band(bit.rshift(b1, 4), 7))
    local attr = bit.bor(bit.lshift(bit.band(bit.rshift(b1, 2), 1), 2), bit.band(bit.rshift(b2, 4), 3))
    tree:add(f.attr, tvb(at + 1, 2), attr)
    tree:add(f.ln, tvb(at + 1, 1), bit.band(b1, 2) ~= 0)
    local th = bit.band(b1, 1) ~= 0
    tree:add(f.th, tvb(at + 1, 1), th)
    local td = bit.band(b2, 0x80) ~= 0
    tree:add(f.td, tvb(at + 2, 1), td)
    tree:add(f.ep, tvb(at + 2, 1), bit.band(b2, 0x40) ~= 0)
    tree:add(f.at, tvb(at + 2, 1), bit.band(bit.rshift(b2, 2), 3))
    local length = bit.bor(bit.lshift(bit.band(b2, 3), 8), tvb(at + 3, 1):uint())
    if length == 0 then length = 1024 end
    tree:add(f.length_dw, tvb(at + 2, 2), length)
    if size - at < header then
        tree:add_proto_expert_info(e_tlp, "TLP shorter than its 4 DW header")
        return kind .. " (malformed)"
    end
    local data = bit.band(fmt, 2) ~= 0
    local expected = at + header + (data and length * 4 or 0) + (td and 4 or 0)
    if expected ~= size then
        tree:add_proto_expert_info(e_tlp, string.format(
            "TLP is %d bytes; its header, Length (%d DW) and TD say %d", size, length, expected))
    end
    local h = at
    local summary = kind
    -- 10-bit tags: T9 in byte 1 bit 7, T8 in byte 1 bit 3.
    local tag_hi = bit.bor(bit.lshift(bit.rshift(b1, 7), 9), bit.lshift(bit.band(bit.rshift(b1, 3), 1), 8))
    if family == "completion" then
        local completer = tvb(h + 4, 2):uint()
        local b6 = tvb(h + 6, 1):uint()
        local count = bit.bor(bit.lshift(bit.band(b6, 0xf), 8), tvb(h + 7, 1):uint())
        if count == 0 then count = 4096 end
        local status = STATUS[bit.rshift(b6, 5)] or string.format("reserved %d", bit.rshift(b6, 5))
        tree:add(f.completer, tvb(h + 4, 2), bdf(completer))
        tree:add(f.status, tvb(h + 6, 1), status)
        tree:add(f.bcm, tvb(h + 6, 1), bit.band(b6, 0x10) ~= 0)
        tree:add(f.byte_count, tvb(h + 6, 2), count)
        local requester = tvb(h + 8, 2):uint()
        tree:add(f.requester, tvb(h + 8, 2), bdf(requester))
        tree:add(f.tag, tvb(h + 10, 1), bit.bor(tag_hi, tvb(h + 10, 1):uint()))
        tree:add(f.lower_address, tvb(h + 11, 1), bit.band(tvb(h + 11, 1):uint(), 0x7f))
        summary = string.format("%s %s cpl=%s req=%s", kind, status, bdf(completer), bdf(requester))
    else
        local requester = tvb(h + 4, 2):uint()
        tree:add(f.requester, tvb(h + 4, 2), bdf(requester))
        local tag = bit.bor(tag_hi, tvb(h + 6, 1):uint())
        local be = tvb(h + 7, 1):uint()
        summary = string.format("%s req=%s", kind, bdf(requester))
        if family == "message" then
            tree:add(f.tag, tvb(h + 6, 1), tag)
            local routing = ROUTING[bit.band(typ, 7)] or "reserved"
            tree:add(f.routing, tvb(h, 1), routing)
            tree:add(f.msg_code, tvb(h + 7, 1), be)
            if routing == "address" then
                tree:add(f.address, tvb(h + 8, 8), tvb(h + 8, 8):uint64())
            elseif routing == "id" then
                tree:add(f.target, tvb(h + 8, 2), bdf(tvb(h + 8, 2):uint()))
            end
            summary = string.format("%s code=0x%02x %s", summary, be, routing)
        else
            -- §2.2.7.1: with TH, a Memory Write's Steering Tag is in the Tag
            -- byte; a read's or an AtomicOp's is in the byte-enables byte.
            local st_in_be = th and kind ~= "MWr" and family == "memory"
            if th and kind == "MWr" then
                tree:add(f.steering_tag, tvb(h + 6, 1), tvb(h + 6, 1):uint())
            else
                tree:add(f.tag, tvb(h + 6, 1), tag)
            end
            if st_in_be then
                tree:add(f.steering_tag, tvb(h + 7, 1), be)
            else
                tree:add(f.last_be, tvb(h + 7, 1), bit.rshift(be, 4))
                tree:add(f.first_be, tvb(h + 7, 1), bit.band(be, 0xf))
            end
            if family == "config" then
                local target = tvb(h + 8, 2):uint()
                local register = bit.band(tvb(h + 10, 2):uint(), 0xffc)
                tree:add(f.target, tvb(h + 8, 2), bdf(target))
                tree:add(f.register, tvb(h + 10, 2), register)
                summary = string.format("%s target=%s reg=0x%03x", summary, bdf(target), register)
            else
                local address
                if header == 16 then
                    address = tvb(h + 8, 8):uint64()
                    address = address - (address % 4)
                    tree:add(f.address, tvb(h + 8, 8), address)
                else
                    local a = tvb(h + 8, 4):uint()
                    address = UInt64(a - (a % 4))
                    tree:add(f.address, tvb(h + 8, 4), address)
                end
                if th then
                    tree:add(f.ph_hint, tvb(h + header - 1, 1), bit.band(tvb(h + header - 1, 1):uint(), 3))
                end
                summary = string.format("%s addr=0x%s", summary, address:tohex())
            end
        end
    end
    local body = at + header
    if data and body < size then
        local n = math.min(length * 4, size - body - (td and 4 or 0))
        if n > 0 then
            tree:add(f.payload, tvb(body, n))
        end
    end
    if td and size >= 4 then
        tree:add(f.ecrc, tvb(size - 4, 4))
    end
    return summary
end

function fabric.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    if len < 28 then
        return 0
    end
    pinfo.cols.protocol = "TLPFABRIC"
    local t = tree:add(fabric, tvb())
    local version = tvb(0, 1):uint()
    t:add(f.version, tvb(0, 1))
    if version ~= 2 then
        t:add_proto_expert_info(e_version, string.format("version %d, not 2", version))
    end
    local flags = tvb(1, 1):uint()
    local ft = t:add(f.flags, tvb(1, 1))
    ft:add(f.flag_ack, tvb(1, 1))
    ft:add(f.flag_nak, tvb(1, 1))
    ft:add(f.flag_credits, tvb(1, 1))
    ft:add(f.flag_fcs, tvb(1, 1))
    local count = tvb(2, 2):uint()
    t:add(f.tlp_count, tvb(2, 2))
    t:add(f.src_node, tvb(4, 2))
    t:add(f.dst_node, tvb(6, 2))
    t:add(f.seq, tvb(8, 4))
    t:add(f.ack, tvb(12, 4))
    local ct = t:add(fabric, tvb(16, 12), "Credits allocated")
    ct:set_text("Credits allocated (PH, PD, NPH, NPD, CplH, CplD)")
    for i, field in ipairs({ f.ph, f.pd, f.nph, f.npd, f.cplh, f.cpld }) do
        ct:add(field, tvb(16 + 2 * (i - 1), 2))
    end
    -- The TLPs, then the CRC over everything from the Ethernet header on.
    local at = 28
    local summaries = {}
    for i = 1, count do
        if len - at < 2 then
            t:add_proto_expert_info(e_short, string.format("TLP %d of %d is missing", i, count))
            break
        end
        local size = tvb(at, 2):uint()
        if len - at - 2 < size then
            t:add_proto_expert_info(e_short, string.format("TLP %d runs past the frame", i))
            break
        end
        local tt = t:add(fabric, tvb(at, 2 + size), string.format("TLP %d", i))
        tt:add(f.tlp_len, tvb(at, 2))
        local summary = dissect_tlp(tvb(at + 2, size):tvb(), pinfo, tt)
        tt:append_text(": " .. summary)
        table.insert(summaries, summary)
        at = at + 2 + size
    end
    local names = {}
    for bitv, name in pairs(flag_names) do
        if bitv ~= 0 and bit.band(flags, bitv) ~= 0 then table.insert(names, name) end
    end
    table.sort(names)
    local info = string.format("seq %d ack %d", tvb(8, 4):uint(), tvb(12, 4):uint())
    if #names > 0 then info = info .. " [" .. table.concat(names, ",") .. "]" end
    if #summaries > 0 then info = info .. " " .. table.concat(summaries, "; ") end
    pinfo.cols.info = info
    if len - at >= 4 then
        local crc = tvb(at, 4):uint()
        t:add(f.crc, tvb(at, 4))
        local typ = last_bytes(eth_type)
        -- With the FCS flag the trailer is zero: nothing to check here.
        if typ and bit.band(flags, 0x08) == 0 then
            -- From the EtherType on: the addresses are the link's.
            -- (bytes() also returns a count: parenthesised, only the bytes.)
            local computed = crc32c({ typ, (tvb:range(0, at):bytes()) })
            local ok = computed == crc
            local ci = t:add(f.crc_ok, tvb(at, 4), ok)
            if not ok then
                ci:add_proto_expert_info(e_crc, string.format("CRC-32C 0x%08x, computed 0x%08x", crc, computed))
            end
        end
        if len > at + 4 then
            t:add(f.padding, tvb(at + 4))
        end
    else
        t:add_proto_expert_info(e_short, "no room for the CRC-32C after the TLPs")
    end
    return len
end

DissectorTable.get("ethertype"):add(ETHERTYPE, fabric)
