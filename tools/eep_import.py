#!/usr/bin/env python3
"""Convert EEP definitions (JSON, EEP 2.6.5 facts) into the enocean crate's profile format.

Usage: tools/eep_import.py [SOURCE_JSON] [OUTPUT]

SOURCE_JSON defaults to /work/shared/reference/enocean/eep-definitions.json and OUTPUT to
crates/enocean/src/eep/profiles/alliance.eep. The output is committed; the crate never reads the
source. The format is described in docs/eep.md. This script applies:

- the naming rules (field key = lowerCamelCase of the field name, enum value name = short
  lowerCamelCase of its description, see `camel` and `value_name`);
- IoTC's spellings where its published output differs from the rule (`KEY_OVERRIDES`,
  `ENUM_OVERRIDES`);
- corrections of the source where it contradicts the EEP layout (`fix_profile`).
"""

import html
import json
import re
import sys
from pathlib import Path

DEFAULT_SOURCE = "/work/shared/reference/enocean/eep-definitions.json"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "crates/enocean/src/eep/profiles/alliance.eep"

# (EEP or "*", shortcut) -> IoTC key. "*" applies to every profile.
KEY_OVERRIDES = {
    ("*", "LRNB"): "learn",
    ("*", "LRN"): "learn",
    ("A5-09-09", "PFD"): "powerFailureDetected",
    ("A5-09-04", "Conc"): "co2",
    ("F6-02-04", "RAI"): "buttonAI",
    ("F6-02-04", "RA0"): "buttonA0",
    ("F6-02-04", "RBI"): "buttonBI",
    ("F6-02-04", "RB0"): "buttonB0",
    ("D2-14-40", "TMP10"): "temperature",
    ("D2-14-40", "ILL"): "illumination",
    ("D2-14-40", "ACC_S"): "accelerationStatus",
}

# Fields named "Energy Bow" are all keyed `energybow`, as IoTC does for F6-02-04.
ENERGY_BOW_KEY = "energybow"

# (EEP or "*", shortcut) -> {raw: (value name, meaning or None to keep the description)}.
ENUM_OVERRIDES = {
    # IoTC names the 4BS LRN bit like the 1BS learn button: notPressed = data telegram.
    ("*", "LRNB"): {0: ("pressed", None), 1: ("notPressed", None)},
    ("A5-09-09", "PFD"): {0: ("False", None), 1: ("True", None)},
    ("D2-14-40", "ACC_S"): {1: ("threshold1", None), 2: ("threshold2", None)},
}
for axis in "XYZ":
    ENUM_OVERRIDES[("D2-14-40", "ACC_" + axis)] = {
        1021: ("underrange", None),
        1022: ("overrange", None),
        1023: ("accelerationError" + axis, None),
    }

# Field attributes added per (EEP, shortcut): extra lines written under the field.
FIELD_EXTRA = {
    ("F6-02-04", "BC"): ["omit 0"],
    ("F6-02-04", "RAI"): ["omit 0"],
    ("F6-02-04", "RA0"): ["omit 0"],
    ("F6-02-04", "RBI"): ["omit 0"],
    ("F6-02-04", "RB0"): ["omit 0"],
    ("D2-14-40", "ACC_X"): ["dec 2"],
    ("D2-14-40", "ACC_Y"): ["dec 2"],
    ("D2-14-40", "ACC_Z"): ["dec 2"],
}

NO_UNIT = {"", "1", "-", "N/A", "According to", "According to VUNIT", "% or °C"}


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def text(x):
    """Plain one-line text of a source string (HTML removed); '' for missing values."""
    if not isinstance(x, (str, int, float)):
        return ""
    s = html.unescape(str(x))
    s = re.sub(r"<br\s*/?>", " ", s)
    s = re.sub(r"<img>.*?</img>", " ", s)
    s = re.sub(r"<[^>]*>", "", s)
    s = re.sub(r"\.?\s*graphics/\S+", "", s)
    s = s.replace("|", "/").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(s.split())


def number(x):
    """A number from the source: int, float, '0x1F', '0b101', '+40', '1.5'."""
    if isinstance(x, (int, float)):
        return x
    s = str(x).strip().replace(",", ".")
    if s.startswith("+"):
        s = s[1:]
    low = s.lower()
    if low.startswith("0x"):
        return int(low, 16)
    if low.startswith("0b"):
        return int(low[2:], 2)
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    if re.fullmatch(r"-?\d*\.\d+", s):
        return float(s)
    # Notes such as "100 or 255" or "2000 (or 5000)": the first number is the normal case.
    m = re.match(r"-?\d+(\.\d+)?", s)
    if not m:
        raise ValueError(f"not a number: {x!r}")
    return number(m.group(0))


def fmt(n):
    """Prints a number the shortest exact way."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    return repr(n) if isinstance(n, float) else str(n)


def words(s):
    s = re.sub(r"\b([A-Za-z])/([A-Za-z])\b", r"\1\2", s)  # "I/O" -> "IO"
    return re.findall(r"[A-Za-z0-9]+", s)


def camel(parts):
    out = []
    for i, w in enumerate(parts):
        if i == 0:
            out.append(w.lower() if not re.fullmatch(r"[A-Z][a-z0-9]+.*", w) else w[0].lower() + w[1:])
        elif w.isupper() and len(w) > 2:
            out.append(w[0] + w[1:].lower())
        else:
            out.append(w[0].upper() + w[1:])
    return "".join(out)


LEADING_NUMBERS = {"1st": "first", "2nd": "second", "3rd": "third", "1": "one", "2": "two", "3": "three", "4": "four"}


def key_name(name):
    """Field key rule: lowerCamelCase of the field name without parenthesised remarks; a leading
    number is spelled out (keys start with a letter)."""
    name = re.sub(r"\([^)]*\)", " ", name)
    parts = words(name)
    if parts and parts[0][0].isdigit():
        head = re.match(r"\d+(st|nd|rd|th)?", parts[0]).group(0)
        parts = [LEADING_NUMBERS.get(head, "n" + head)] + ([parts[0][len(head):]] if parts[0][len(head):] else []) + parts[1:]
    return camel(parts)


def value_name(desc, whole=False):
    """Enum value rule: lowerCamelCase of the description's head (before ':'), without
    parenthesised remarks, 8 words at most. `whole` keeps the text after ':' too."""
    head = desc
    if not whole and ":" in desc and desc.split(":")[0].strip():
        head = desc.split(":")[0]
    head = re.sub(r"\([^)]*\)", " ", head)
    head = head.replace("%", " percent ")
    return camel(words(head)[:8])


def unit_of(u):
    if isinstance(u, dict):
        return None
    u = text(u).replace(" ", "")
    return None if text(u) in NO_UNIT or u == "" else u


class Field:
    def __init__(self, shortcut, bits, key, name):
        self.shortcut = shortcut
        self.bits = bits
        self.key = key
        self.name = name
        self.attrs = []
        self.items = []

    def lines(self):
        bits = "+".join(f"{o}:{s}" for o, s in self.bits)
        token = self.shortcut.replace(" ", "_")
        out = [f"field {token} {bits} {self.key}" + (f" | {self.name}" if self.name else "")]
        if token != self.shortcut:
            out.append(f"  shortcut | {self.shortcut}")
        out += [f"  {a}" for a in self.attrs]
        out += [f"  {i}" for i in self.items]
        return out


def bits_of(f):
    if "spread" in f:
        return [(int(number(p["bitoffs"])), int(number(p["bitsize"]))) for p in as_list(f["spread"])]
    return [(int(number(f["bitoffs"])), int(number(f["bitsize"])))]


def is_numeric_range(desc):
    """A range item without scale is a plain number when its description reads like a quantity."""
    if desc == "":
        return True
    if re.search(r"\d\s*(\.\.\.|\u2026|to)\s*\d", desc):
        return True
    return bool(re.search(r"channel|value|number|pulses|week|month|speeds|preset", desc, re.I))


def parse_range_value(v):
    """'2...14' -> (2, 14); a single value -> None."""
    m = re.fullmatch(r"\s*(\S+?)\s*(?:\.\.\.|\u2026)\s*(\S+)\s*", str(v))
    if m:
        return number(m.group(1)), number(m.group(2))
    return None


def convert_items(eep, f, shortcut):
    """Item lines of a field: exact values first, then ranges and linear parts in source order."""
    vals, rest = [], []
    overrides = ENUM_OVERRIDES.get((eep, shortcut)) or ENUM_OVERRIDES.get(("*", shortcut)) or {}
    for enum in as_list(f.get("enum")):
        for it in as_list(enum.get("item")):
            desc = text(it.get("description"))
            if not any(isinstance(it.get(k), (str, int, float)) for k in ("value", "min", "max", "bitmask")):
                continue  # free-text parameter notes: the field stays a plain number
            if re.fullmatch(r"0[bB][01Xx]*[Xx][01Xx]*", str(it.get("value", ""))):
                # Binary value with don't-care bits ("0b11X0"): a mask item.
                bitsv = str(it["value"])[2:].upper()
                mask = int("".join("0" if c == "X" else "1" for c in bitsv), 2)
                value = int(bitsv.replace("X", "0"), 2)
                vals.append(("mask", mask, value, value_name(desc) or f"value{value}", desc))
                continue
            if "bitmask" in it:
                mask, value = int(str(it["bitmask"]), 2), int(str(it["value"]), 2)
                vals.append(("mask", mask, value, value_name(desc) or f"value{value}", desc))
                continue
            rng = None
            if "min" in it or "max" in it:
                rng = (number(it["min"]), number(it["max"]))
            elif "value" in it and parse_range_value(it["value"]):
                rng = parse_range_value(it["value"])
            if rng is not None:
                scale = it.get("scale")
                unit = unit_of(it.get("unit"))
                if isinstance(scale, dict) and "min" in scale:
                    rest.append(("lin", rng[0], rng[1], number(scale["min"]), number(scale["max"]), unit, desc))
                elif is_numeric_range(desc):
                    rest.append(("lin", rng[0], rng[1], rng[0], rng[1], unit, desc))
                else:
                    rest.append(("rng", rng[0], rng[1], value_name(desc), desc))
                continue
            raw = number(it["value"])
            name = value_name(desc) or f"value{raw}"
            meaning = desc
            if raw in overrides:
                name, m = overrides[raw]
                meaning = m or desc
            attrs = []
            scale, irange = it.get("scale"), it.get("range")
            if isinstance(scale, dict) and "min" in scale:
                attrs.append(f"scale={fmt(number(scale['min']))}:{fmt(number(scale['max']))}")
            if isinstance(irange, dict) and "min" in irange:
                attrs.append(f"range={fmt(number(irange['min']))}:{fmt(number(irange['max']))}")
            unit = unit_of(it.get("unit"))
            bracket = re.search(r"\[([^\]\s]+)\]$", desc)
            if not unit and bracket and not re.search(r"\d", bracket.group(1)):
                unit = bracket.group(1)  # "Energy [Wh]": the unit a value field may refer to
            if unit:
                attrs.append(f"unit={unit}")
            vals.append(("val", raw, name, attrs, meaning))
    if "range" in f and isinstance(f["range"], dict) and "min" in f["range"]:
        rmin, rmax = number(f["range"]["min"]), number(f["range"]["max"])
        scale = f.get("scale")
        if isinstance(scale, dict) and "min" in scale:
            smin, smax = number(scale["min"]), number(scale["max"])
        else:
            smin, smax = rmin, rmax
        rest.append(("lin", rmin, rmax, smin, smax, unit_of(f.get("unit")), ""))
    if not vals and not rest:
        size = sum(s for _, s in bits_of(f))
        rest.append(("lin", 0, (1 << size) - 1, 0, (1 << size) - 1, unit_of(f.get("unit")), ""))
    return unique_names(vals), rest


def unique_names(vals):
    """Colliding value names use the whole description, then get the raw value as a suffix."""
    vals = [rename_whole(v) for v in vals] if has_collision(vals) else vals
    count = {}
    for v in vals:
        count[v[2 if v[0] == "val" else 3]] = count.get(v[2 if v[0] == "val" else 3], 0) + 1
    out = []
    for v in vals:
        if v[0] == "val" and count[v[2]] > 1:
            v = ("val", v[1], f"{v[2]}{v[1]}", v[3], v[4])
        elif v[0] == "mask" and count[v[3]] > 1:
            v = ("mask", v[1], v[2], f"{v[3]}{v[2]}", v[4])
        out.append(v)
    return out


def drop_unreachable(vals):
    """Drops items matching exactly what an earlier item matches: they can never be chosen."""
    seen, out = set(), []
    for v in vals:
        key = ("val", v[1]) if v[0] == "val" else ("mask", v[1], v[2])
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def unique_ranges(rest, value_names):
    """Range names that occur twice (or as a value name) get their lower bound as a suffix."""
    names = [v[3] for v in rest if v[0] == "rng"]

    def clash(name):
        return names.count(name) > 1 or name in value_names

    return [("rng", v[1], v[2], f"{v[3]}{v[1]}", v[4]) if v[0] == "rng" and clash(v[3]) else v for v in rest]


def has_collision(vals):
    names = [v[2] if v[0] == "val" else v[3] for v in vals]
    return len(names) != len(set(names))


def rename_whole(v):
    if v[0] == "val" and v[4] and v[2] == value_name(v[4]):
        return ("val", v[1], value_name(v[4], whole=True), v[3], v[4])
    if v[0] == "mask" and v[4]:
        return ("mask", v[1], v[2], value_name(v[4], whole=True), v[4])
    return v


def item_lines(vals, rest):
    out = []
    for v in vals:
        if v[0] == "val":
            _, raw, name, attrs, meaning = v
            line = " ".join(["val", fmt(raw), name] + attrs)
            out.append(line + (f" | {meaning}" if meaning else ""))
        else:
            _, mask, value, name, meaning = v
            out.append(f"mask {fmt(mask)} {fmt(value)} {name}" + (f" | {meaning}" if meaning else ""))
    for v in rest:
        if v[0] == "lin":
            _, rmin, rmax, smin, smax, unit, meaning = v
            line = f"lin {fmt(rmin)} {fmt(rmax)} {fmt(smin)} {fmt(smax)}"
            if unit:
                line += f" unit={unit}"
            out.append(line + (f" | {meaning}" if meaning else ""))
        else:
            _, lo, hi, name, meaning = v
            out.append(f"rng {fmt(lo)} {fmt(hi)} {name}" + (f" | {meaning}" if meaning else ""))
    return out


def unit_source_of(f, shortcuts):
    """The field giving this field's unit, for units written "According to VUNIT" or "N/A" next
    to a unit field UN."""
    u = text(f.get("unit"))
    m = re.match(r"According to (\S+)", u)
    if m and m.group(1) in shortcuts:
        return m.group(1)
    if u == "N/A" and "UN" in shortcuts:
        return "UN"
    return None


def convert_field(eep, f, shortcuts=()):
    if "reserved" in f or ("bitoffs" not in f and "spread" not in f):
        return None
    shortcut = text(f.get("shortcut")) or "X"
    name = text(f.get("data")) or text(f.get("description")) or shortcut
    key = KEY_OVERRIDES.get((eep, shortcut)) or KEY_OVERRIDES.get(("*", shortcut))
    if key is None:
        key = ENERGY_BOW_KEY if name.lower() == "energy bow" else key_name(name) or shortcut.lower()
    field = Field(shortcut, bits_of(f), key, name)
    unit_source = unit_source_of(f, shortcuts)
    if isinstance(f.get("scale"), dict) and "ref" in f["scale"]:
        field.attrs.append(f"scale-from {f['scale']['ref']}")
    if isinstance(f.get("unit"), dict) and "ref" in f["unit"]:
        field.attrs.append(f"unit-from {f['unit']['ref']}")
    elif unit_source:
        field.attrs.append(f"unit-from {unit_source}")
    field.attrs += FIELD_EXTRA.get((eep, shortcut), [])
    vals, rest = convert_items(eep, f, shortcut)
    if name.lower() == "energy bow":
        vals = [("val", v[1], v[2], v[3], f"Energy Bow {v[4]}") if v[0] == "val" else v for v in vals]
    vals = drop_unreachable(vals)
    rest = unique_ranges(rest, {v[2] if v[0] == "val" else v[3] for v in vals})
    field.items = item_lines(vals, rest)
    if any(re.match(r"(val|rng|lin) -", i) for i in field.items):
        field.attrs.append("signed")
    return field


def unique_keys(fields):
    """Keys are unique within a case: later duplicates get their shortcut's digits or the shortcut."""
    seen = set()
    for f in fields:
        if f.key in seen:
            digits = "".join(re.findall(r"\d", f.shortcut))
            f.key = f.key + (digits or f.shortcut.capitalize())
        while f.key in seen:
            f.key += "2"
        seen.add(f.key)


def condition_lines(case):
    out = []
    cond = case.get("condition") or {}
    direction = cond.get("direction") or case.get("direction")
    if direction:
        out.append(f"dir {int(number(direction))}")
    for c in as_list(cond.get("datafield")):
        out.append(f"when data {int(number(c['bitoffs']))}:{int(number(c['bitsize']))} {fmt(number(c['value']))}")
    names = {int(number(s["bitoffs"])): text(s.get("data")) for s in as_list(case.get("statusfield"))}
    for c in as_list(cond.get("statusfield")):
        off = int(number(c["bitoffs"]))
        out.append(f"when status {off}:{int(number(c['bitsize']))} {fmt(number(c['value']))} {names.get(off, '')}".rstrip())
    return out


def fix_profile(eep, prof):
    """Corrections where the source contradicts the EEP layout; returns the (possibly new) cases."""
    cases = as_list(prof.get("case"))
    if eep == "D2-14-30":
        # The source puts TMP and HUM on RPLT's bits; the layout continues after RPLT (15..22).
        for f in as_list(cases[0]["datafield"]):
            if f.get("shortcut") == "TMP":
                f["bitoffs"] = "23"
            elif f.get("shortcut") == "HUM":
                f["bitoffs"] = "31"
            elif f.get("shortcut") == "SMS":
                # EEP 2.6.5 calls the smoke alarm SMS; the Alliance's current description SMA.
                f["shortcut"] = "SMA"
    if eep in ("D2-50-00", "D2-50-01"):
        # The source swaps range and scale: 16 bits count 3 h steps, up to 196605 h.
        for case in cases:
            for f in as_list(case.get("datafield")):
                if f.get("shortcut") == "OHC":
                    f["range"], f["scale"] = {"min": "0", "max": "65535"}, {"min": "0", "max": "196605"}
    if eep == "D2-00-01":
        # Temperature Measurement Timing is one 6-bit value split in two fields (MSB bits 38-39,
        # LSB bits 24-27); the source lists the halves separately.
        for case in cases:
            fields = as_list(case.get("datafield"))
            lsb = next((f for f in fields if f.get("shortcut") == "TT (LSB)"), None)
            msb = next((f for f in fields if f.get("shortcut") == "TT (MSB)"), None)
            if lsb and msb:
                lsb["shortcut"] = "TT"
                lsb["spread"] = [{"bitoffs": msb["bitoffs"], "bitsize": msb["bitsize"]},
                                 {"bitoffs": lsb["bitoffs"], "bitsize": lsb["bitsize"]}]
                fields.remove(msb)
                case["datafield"] = fields
    if eep == "A5-20-03":
        # ATS is a valve set point (0..100 = 0..100 %) or a temperature set point (0..255 =
        # 0..40 °C) as SPS (DB1.2) says; the source writes "100 or 255" / "100 or +40".
        fields = as_list(cases[1]["datafield"])
        ats = next(f for f in fields if f.get("shortcut") == "ATS")
        ats["range"] = ats["scale"] = ats["unit"] = {"ref": "SPS"}
        sps = next(f for f in fields if f.get("shortcut") == "SPS")
        for item, (rmax, smax, unit) in zip(sps["enum"]["item"], ((100, 100, "%"), (255, 40, "°C"))):
            item.update(range={"min": 0, "max": rmax}, scale={"min": 0, "max": smax}, unit=unit)
    if eep == "A5-20-04":
        # FTS is the feed temperature (20..80 °C) or the set point (10..30 °C) as TS (DB0.1)
        # says; the source writes "20 .. 80" / "10 .. 30". TMPFC is the room temperature when
        # FL (DB0.0) is 0 and a failure code when it is 1: one case each.
        fields = as_list(cases[0]["datafield"])
        fts = next(f for f in fields if f.get("shortcut") == "FTS")
        fts["range"] = fts["scale"] = {"ref": "TS"}
        ts = next(f for f in fields if f.get("shortcut") == "TS")
        for item, smin, smax in zip(ts["enum"]["item"], (20, 10), (80, 30)):
            item.update(range={"min": 0, "max": 255}, scale={"min": smin, "max": smax})
        out = []
        for fl in (0, 1):
            kept = [json.loads(json.dumps(f)) for f in fields]
            tmpfc = next(f for f in kept if f.get("shortcut") == "TMPFC")
            items = tmpfc["enum"]["item"]
            tmpfc["enum"]["item"] = [i for i in items if ("scale" in i) == (fl == 0)]
            out.append({"condition": {"datafield": {"bitoffs": "31", "bitsize": "1", "value": str(fl)}},
                        "title": f"Failure {fl}", "direction": cases[0].get("direction"),
                        "datafield": kept})
        return out + cases[1:]
    if eep == "A5-20-10":
        # CVAR 255 is "auto" (the source's range reads "100, 255"), as in the profile's other case.
        for case in cases:
            for f in as_list(case.get("datafield")):
                if f.get("shortcut") == "CVAR" and "range" in f:
                    f.pop("range"), f.pop("scale")
                    f["enum"] = {"item": [{"min": "0", "max": "100", "scale": {"min": "0", "max": "100"},
                                           "unit": "%"}, {"value": "255", "description": "Auto"},
                                          {"min": "101", "max": "254", "description": "not used"}]}
    if eep == "A5-3F-00":
        # MSG-Source (DB0.0) tells master test from slave reply; a gateway hears both, so the
        # 4BS cases are not tied to a direction. RSSI levels 2..62 are -32..-92 dBm (the source
        # lists only the ends).
        for case in cases[:2]:
            case.pop("direction", None)
            (case.get("condition") or {}).pop("direction", None)
        rslv = next(f for f in as_list(cases[1]["datafield"]) if f.get("bitoffs") == "2")
        items = rslv["enum"]["item"]
        rslv["enum"]["item"] = [items[0], items[1], {"min": "2", "max": "62", "scale": {"min": "-32", "max": "-92"},
                                                     "unit": "dBm"}, items[3]]
    if eep == "A5-09-05":
        # The concentration is raw x the scale multiplier SCM (0.01, 0.1, 1, 10); the source
        # gives SCM as plain values, so raw 1000 read 1000 ppb whatever SCM said.
        fields = as_list(cases[0]["datafield"])
        conc = next(f for f in fields if f.get("shortcut") == "Conc")
        conc["range"] = conc["scale"] = {"ref": "SCM"}
        scm = next(f for f in fields if f.get("shortcut") == "SCM")
        for item, factor in zip(scm["enum"]["item"], (0.01, 0.1, 1, 10)):
            item.update(range={"min": 0, "max": 65535}, scale={"min": 0, "max": round(65535 * factor, 2)})
    if eep == "D2-05-00":
        # The command sits at bits 28..31 (4-byte messages), 36..39 (set parameters) or 4..7
        # (1-byte stop and query). Cases are tried in order and longer data may match a shorter
        # case, so the longest messages go first: a reply with position 2 is not a stop.
        def cond_end(case):
            conds = as_list((case.get("condition") or {}).get("datafield"))
            return max((int(number(c["bitoffs"])) + int(number(c["bitsize"])) for c in conds), default=0)
        return sorted(cases, key=cond_end, reverse=True)
    if eep in ("A5-06-01", "A5-06-02", "A5-06-05"):
        # Range select (DB0.0) says which of the two illumination bytes is valid: one case each.
        fields = as_list(cases[0]["datafield"])
        out = []
        for rs, drop in ((0, "ILL2"), (1, "ILL1")):
            kept = [dict(f) for f in fields if f.get("shortcut") != drop]
            out.append({"condition": {"datafield": {"bitoffs": "31", "bitsize": "1", "value": str(rs)}},
                        "title": f"Range select {rs}", "datafield": kept})
        return out
    return cases


def convert(src):
    data = json.loads(Path(src).read_text())
    out = [
        "# EEP profiles converted by tools/eep_import.py from the EnOcean Alliance EEP 2.6.5 facts",
        "# (as published in data form by the CC0 enocean-js project). Do not edit: change the tool and",
        "# run it again. Hand-written profiles live in extra.eep. Format: docs/eep.md.",
        "",
    ]
    for eep in sorted(data):
        prof = data[eep]
        title = text(prof.get("title"))
        if title.startswith("Type 0x") or not title:
            title = text(prof.get("func_title")) + (f" ({title})" if title else "")
        out.append(f"profile {eep} {title}")
        if "ref" in prof and not prof.get("case"):
            out.append(f"ref {prof['ref'].upper()}")
            out.append("")
            continue
        cases = []
        for case in fix_profile(eep, prof):
            shortcuts = {text(f.get("shortcut")) for f in as_list(case.get("datafield"))}
            fields = [f for f in (convert_field(eep, f, shortcuts) for f in as_list(case.get("datafield"))) if f]
            unique_shortcuts(fields)
            unique_keys(fields)
            cases.append(Case(text(case.get("title")), condition_lines(case), fields))
        for case in derive_conditions(cases):
            out += case.lines()
        out.append("")
    return "\n".join(out)


class Case:
    def __init__(self, title, conditions, fields):
        self.title = title
        self.conditions = conditions
        self.fields = fields

    def lines(self):
        out = ["case" + (f" {self.title}" if self.title else "")]
        out += ["  " + c for c in self.conditions]
        for f in self.fields:
            out += ["  " + line for line in f.lines()]
        return out


def single_value(field):
    """The raw value of a one-part field whose only item is a single value; else None."""
    if len(field.bits) == 1 and len(field.items) == 1 and field.items[0].startswith("val "):
        return int(field.items[0].split()[1])
    return None


def field_key(field):
    return (field.shortcut, tuple(field.bits))


def selector(cases):
    """A field (shortcut, bits) with a single value in every given case."""
    for f in cases[0].fields:
        if single_value(f) is None:
            continue
        if all(any(field_key(g) == field_key(f) and single_value(g) is not None for g in c.fields) for c in cases):
            return field_key(f)
    return None


def condition(field, value):
    (offset, size), = field.bits
    return f"when data {offset}:{size} {value}"


def second_condition(case, first_key):
    """What tells a case apart from others with the same command: another single-value field,
    or the field and value its title names ("... (BUS = 1)")."""
    for g in case.fields:
        if field_key(g) != first_key and single_value(g) is not None:
            return condition(g, single_value(g))
    m = re.search(r"\b([A-Z][A-Z0-9_]*) = (\d+)\)", case.title)
    named = m and next((g for g in case.fields if g.shortcut == m.group(1) and len(g.bits) == 1), None)
    return condition(named, m.group(2)) if named else None


def derive_conditions(cases):
    """Profiles whose cases carry no conditions in the source (D2-02, D2-10, D2-20, D2-30,
    D2-31) select them by a command field with one value per case (CMD, MID, MT). Cases sharing
    that value are told apart by a second condition where one can be found; those come first."""
    if len(cases) < 2 or any(c.conditions for c in cases):
        return cases
    key = selector(cases)
    if key is None:
        return cases
    for c in cases:
        command = next(g for g in c.fields if field_key(g) == key)
        c.conditions.append(condition(command, single_value(command)))
    ordered = []
    for first in dict.fromkeys(c.conditions[0] for c in cases):
        group = [c for c in cases if c.conditions[0] == first]
        if len(group) > 1:
            for c in group:
                second = second_condition(c, key)
                if second:
                    c.conditions.append(second)
            group.sort(key=lambda c: -len(c.conditions))
        ordered += group
    return ordered


def unique_shortcuts(fields):
    """Shortcuts are unique within a case (the source repeats some): later ones get a number."""
    seen = {}
    for f in fields:
        n = seen.get(f.shortcut, 0) + 1
        seen[f.shortcut] = n
        if n > 1:
            f.shortcut = f"{f.shortcut}{n}"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SOURCE
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUTPUT
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(convert(src))
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
