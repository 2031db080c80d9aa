#!/usr/bin/python3
"""avro_interop.py: keel's Avro implementation checked against Apache
Avro's own Python one (Debian's python3-avro), which nobody here wrote.

For every current schema under schemas/ (files under an archive/ folder
are older versions and are skipped) it checks that keel's Parsing
Canonical Form equals python-avro's, that keel's CRC-64-AVRO fingerprint
equals one computed here from the spec (itself checked against the spec's
published test vectors), that a record python-avro writes decodes with
`keel codec decode` to the same JSON, and that a record `keel codec
encode` writes carries the right header and decodes with python-avro to
the same values (and, with no map in the schema, to the same bytes).

Run with Debian's interpreter, which has the avro package:
    /usr/bin/python3 avro_interop.py path/to/keel path/to/schemas
Prints a line per schema, then "N passed, M failed"; exits 1 on failure.
"""

import datetime
import io
import json
import os
import random
import subprocess
import sys

import avro.io
import avro.schema

MAGIC = b"\xc3\x01"
U64 = (1 << 64) - 1
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes",
              "string"}

# ---- CRC-64-AVRO, as the Avro specification defines it ------------------

CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table():
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


CRC64_TABLE = _crc64_table()


def crc64_avro(data):
    fp = CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


# The specification's test data: canonical form -> signed 64-bit value.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"int"', 8247732601305521295),
    ('"string"', -8142146995180207161),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"name":"foo","type":"record","fields":[{"name":"f1",'
     '"type":"boolean"}]}', 7843277075252814651),
]


def check_spec_vectors():
    bad = []
    for text, want in SPEC_VECTORS:
        got = crc64_avro(text.encode())
        if got != want & U64:
            bad.append("%s: %d, want %d" % (text, got, want & U64))
    return bad


# ---- canonical form -----------------------------------------------------

def spec_primitives(node):
    """python-avro 1.11 writes a primitive that carries attributes such as
    logicalType as {"type":"long"}; the spec's [PRIMITIVES] rule (and the
    Java implementation) make it "long". keel follows the spec, so exactly
    that case is rewritten here before comparing; nothing else is."""
    if isinstance(node, dict):
        if list(node) == ["type"] and node["type"] in PRIMITIVES:
            return node["type"]
        return {k: spec_primitives(v) for k, v in node.items()}
    if isinstance(node, list):
        return [spec_primitives(v) for v in node]
    return node


def python_canonical_form(schema):
    # The same serialization python-avro's canonical_form uses.
    return json.dumps(spec_primitives(json.loads(schema.canonical_form)),
                      separators=(",", ":"))


# ---- sample records -----------------------------------------------------

def _text(rng, variant):
    pieces = ["a", "Z", "7", "-", " ", '"', "\\", "/", "\u00e9", "\u20ac",
              "\U0001F600", "\n", "order-", '{"k":1}']
    # No U+0000: `keel codec encode` reads its JSON with jansson's
    # defaults, which refuse NUL in strings.
    if variant == 0:
        return ""
    count = 12 if variant == 1 else rng.randrange(10)
    return "".join(rng.choice(pieces) for _ in range(count))


def _is_timestamp_millis(schema):
    return getattr(schema, "logical_type", None) == "timestamp-millis"


def sample(schema, rng, variant):
    """A record for schema as a pair (keel's JSON value, python-avro datum):
    variant 0 takes nulls, empties and zeros, 1 sets everything to large
    values, others are random."""
    t = schema.type
    if t == "null":
        return None, None
    if t == "boolean":
        v = variant == 1 or (variant > 1 and rng.random() < 0.5)
        return v, v
    if _is_timestamp_millis(schema):
        # Inside python's datetime range.
        ms = [0, 4102444799999, -86400000][variant] if variant < 3 else \
            rng.randrange(-10**11, 4 * 10**12)
        return ms, EPOCH + datetime.timedelta(milliseconds=ms)
    if t in ("int", "long"):
        bits = 31 if t == "int" else 63
        if variant == 0:
            v = 0
        elif variant == 1:
            v = (1 << bits) - 1
        elif variant == 2:
            v = -(1 << bits)
        else:
            v = rng.randrange(-(1 << bits), 1 << bits)
        return v, v
    if t in ("float", "double"):
        v = 0.0 if variant == 0 else rng.randrange(-32768, 32768) / 8.0
        return v, v
    if t == "string":
        v = _text(rng, variant)
        return v, v
    if t in ("bytes", "fixed"):
        n = schema.size if t == "fixed" else \
            (0 if variant == 0 else rng.randrange(24))
        raw = bytes(rng.randrange(256) for _ in range(n))
        return raw.decode("latin-1"), raw  # Avro's JSON mapping of bytes
    if t == "enum":
        syms = schema.symbols
        v = syms[0] if variant == 0 else syms[-1] if variant == 1 else \
            rng.choice(syms)
        return v, v
    if t == "union":
        branches = schema.schemas
        nulls = [i for i, b in enumerate(branches) if b.type == "null"]
        if variant == 0 and nulls:
            k = nulls[0]
        elif variant == 1:
            k = next((i for i, b in enumerate(branches) if b.type != "null"),
                     0)
        else:
            k = rng.randrange(len(branches))
        return sample(branches[k], rng, variant)
    if t in ("record", "error"):
        kj, kp = {}, {}
        for f in schema.fields:
            kj[f.name], kp[f.name] = sample(f.type, rng, variant)
        return kj, kp
    if t in ("array", "map"):
        n = 0 if variant == 0 else 3 if variant == 1 else rng.randrange(4)
        items = [sample(schema.items if t == "array" else schema.values,
                        rng, variant) for _ in range(n)]
        if t == "array":
            return [j for j, _ in items], [p for _, p in items]
        return ({"key-%d" % i: j for i, (j, _) in enumerate(items)},
                {"key-%d" % i: p for i, (_, p) in enumerate(items)})
    raise ValueError("unsupported schema type %s" % t)


def has_map(schema, seen=None):
    seen = set() if seen is None else seen
    if id(schema) in seen:
        return False
    seen.add(id(schema))
    t = schema.type
    if t == "map":
        return True
    if t == "array":
        return has_map(schema.items, seen)
    if t == "union":
        return any(has_map(b, seen) for b in schema.schemas)
    if t in ("record", "error"):
        return any(has_map(f.type, seen) for f in schema.fields)
    return False


def as_keel_json(datum):
    """A python-avro datum shaped like keel's JSON: timestamps as
    milliseconds, bytes as code points 0-255."""
    if isinstance(datum, datetime.datetime):
        return (datum - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(datum, bytes):
        return datum.decode("latin-1")
    if isinstance(datum, dict):
        return {k: as_keel_json(v) for k, v in datum.items()}
    if isinstance(datum, list):
        return [as_keel_json(v) for v in datum]
    return datum


# ---- keel ---------------------------------------------------------------

class KeelError(Exception):
    pass


def keel(binary, args, stdin=b""):
    p = subprocess.run([binary] + args, input=stdin, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise KeelError("keel %s: exit %d: %s" % (
            " ".join(args), p.returncode,
            p.stderr.decode(errors="replace").strip()[:2000]))
    return p.stdout


def python_encode(schema, datum):
    out = io.BytesIO()
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(out))
    return out.getvalue()


def python_decode(schema, body):
    inp = io.BytesIO(body)
    datum = avro.io.DatumReader(schema, schema).read(
        avro.io.BinaryDecoder(inp))
    if inp.tell() != len(body):
        raise ValueError("%d bytes left after the record"
                         % (len(body) - inp.tell()))
    return datum


def check_schema(binary, path, rng):
    """Returns (fullname, problems)."""
    with open(path, encoding="utf-8") as f:
        schema = avro.schema.parse(f.read())
    name = schema.fullname
    problems = []

    pcf = keel(binary, ["schema", "canonical", name]).decode().rstrip("\n")
    want = python_canonical_form(schema)
    if pcf != want:
        problems.append("canonical form differs:\n  keel:   %s\n  python: %s"
                        % (pcf, want))
    keel_fp = int(keel(binary, ["schema", "fingerprint", name]), 16)
    if keel_fp != crc64_avro(pcf.encode()):
        problems.append("fingerprint %016x, CRC-64-AVRO of its canonical form "
                        "is %016x" % (keel_fp, crc64_avro(pcf.encode())))
    # Records carry the fingerprint of python-avro's canonical form: the
    # one any other Avro implementation would put there.
    fp = crc64_avro(want.encode())
    header = MAGIC + fp.to_bytes(8, "little")
    compare_bytes = not has_map(schema)

    for variant in range(4):
        rec_json, datum = sample(schema, rng, variant)
        tag = "variant %d" % variant

        # python-avro writes, keel reads.
        body = python_encode(schema, datum)
        try:
            out = json.loads(keel(binary, ["codec", "decode"], header + body))
        except KeelError as e:
            problems.append("%s: keel cannot decode python's record: %s"
                            % (tag, e))
        else:
            if out.get("type") != name:
                problems.append("%s: keel decoded a %s" % (tag,
                                                           out.get("type")))
            if out.get("record") != rec_json:
                problems.append("%s: keel decoded\n  %s\n  python wrote\n  %s"
                                % (tag, json.dumps(out.get("record")),
                                   json.dumps(rec_json)))

        # keel writes, python-avro reads.
        try:
            enc = keel(binary, ["codec", "encode", name],
                       json.dumps(rec_json).encode())
        except KeelError as e:
            problems.append("%s: keel cannot encode: %s" % (tag, e))
            continue
        if enc[:2] != MAGIC:
            problems.append("%s: keel wrote magic %s" % (tag, enc[:2].hex()))
            continue
        if enc[2:10] != fp.to_bytes(8, "little"):
            problems.append("%s: keel wrote fingerprint %s, want %016x "
                            "little-endian" % (tag, enc[2:10].hex(), fp))
            continue
        try:
            back = as_keel_json(python_decode(schema, enc[10:]))
        except Exception as e:  # python-avro raises several kinds
            problems.append("%s: python cannot decode keel's record: %r"
                            % (tag, e))
            continue
        if back != rec_json:
            problems.append("%s: python decoded\n  %s\n  keel was given\n  %s"
                            % (tag, json.dumps(back), json.dumps(rec_json)))
        if compare_bytes and enc[10:] != body:
            problems.append("%s: bodies differ:\n  keel:   %s\n  python: %s"
                            % (tag, enc[10:].hex(), body.hex()))
    return name, problems


def schema_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "archive")
        for fn in sorted(filenames):
            if fn.endswith(".avsc"):
                yield os.path.join(dirpath, fn)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: %s KEEL_BINARY SCHEMA_DIR\n" % argv[0])
        return 2
    binary, root = argv[1], argv[2]
    rng = random.Random(20240611)
    passed = failed = 0

    bad = check_spec_vectors()
    print("%s CRC-64-AVRO spec test vectors" % ("FAIL" if bad else "ok  "))
    for b in bad:
        print("    " + b)
    passed, failed = (passed, failed + 1) if bad else (passed + 1, failed)

    names = set()
    for path in schema_files(root):
        rel = os.path.relpath(path, root)
        try:
            name, problems = check_schema(binary, path, rng)
            names.add(name)
        except Exception as e:  # a broken schema or keel: report, go on
            name, problems = rel, ["%s: %r" % (rel, e)]
        if problems:
            failed += 1
            print("FAIL %s (%s)" % (name, rel))
            for p in problems:
                print("    " + p.replace("\n", "\n    "))
        else:
            passed += 1
            print("ok   %s" % name)

    # Every schema keel carries was checked, and nothing else.
    try:
        listed = {line.split()[1] for line in
                  keel(binary, ["schema", "list"]).decode().splitlines()}
    except KeelError as e:
        listed = set()
        print("FAIL keel schema list: %s" % e)
        failed += 1
    if listed and listed != names:
        failed += 1
        print("FAIL keel schema list differs from schemas/: only in keel %s, "
              "only in schemas/ %s" % (sorted(listed - names),
                                       sorted(names - listed)))

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
