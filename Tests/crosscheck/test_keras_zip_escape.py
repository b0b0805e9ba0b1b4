"""A `.keras` zip built to write outside its folder or to fill the disk, through the real CLI:
members named `../x`, by absolute path or through a symbolic link, headers declaring sizes their
data does not have, and a zip bomb. Each must end in exit 2 with one `error:` line naming the
file and what is wrong, write no output, and leave no file anywhere: not where a member's path
points, not in the working folder, not in the temporary folder (where Ferry extracts the weights)."""
import os
import struct
import subprocess
import zipfile
import zlib

import pytest

from conftest import FERRY, ROOT

MLP = ROOT / "fixtures/keras/mlp/keras3.keras"


def _members():
    with zipfile.ZipFile(MLP) as z:
        return {name: z.read(name) for name in z.namelist()}


def _write(path, members, extra=(), compress=zipfile.ZIP_DEFLATED):
    """The mlp fixture's members and `extra` ((ZipInfo or name, bytes) pairs) in one zip."""
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
        for info, data in extra:
            z.writestr(info, data)


def _symlink(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode in the high half of external_attr
    info.external_attr = (0o120777 << 16)
    return info, target.encode()


def _declare_size(path, member, size):
    """Rewrites `member`'s uncompressed size in both its local and central headers (the data stays)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04" + b"")
    while local >= 0:
        n, = struct.unpack_from("<H", data, local + 26)
        if data[local + 30:local + 30 + n] == name:
            struct.pack_into("<I", data, local + 22, size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        n, = struct.unpack_from("<H", data, central + 28)
        if data[central + 46:central + 46 + n] == name:
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def _zip_bomb(path, size, head=b""):
    """model.weights.h5 declared and really holding `head` and then zeros up to `size` bytes (a
    thousand to one), deflated."""
    members = _members()
    del members["model.weights.h5"]
    _write(path, members)
    assert len(head) < 1 << 20 and size % (1 << 20) == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    first = head + block[len(head):]
    raw = b"".join([compressor.compress(first)] + [compressor.compress(block) for _ in range((size >> 20) - 1)])
    raw += compressor.flush()
    crc = zlib.crc32(first)
    for _ in range((size >> 20) - 1):
        crc = zlib.crc32(block, crc)
    name = b"model.weights.h5"
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    entries, cd_size, cd_offset = struct.unpack_from("<HII", data, end + 10)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(raw), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(raw), size, len(name),
                          0, 0, 0, 0, 0, cd_offset) + name
    head, directory = data[:cd_offset], data[cd_offset:cd_offset + cd_size]
    new_offset = len(head) + len(local) + len(raw)
    tail = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries + 1, entries + 1, cd_size + len(central), new_offset, 0)
    path.write_bytes(bytes(head) + local + raw + bytes(directory) + central + tail)


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


CASES = {
    "parent": ("leaves the archive", lambda p, t: _write(p, _members(), [("../escaped.txt", b"x")])),
    "deep_parent": ("leaves the archive", lambda p, t: _write(p, _members(), [("assets/../../../escaped.txt", b"x")])),
    "backslash_parent": ("leaves the archive", lambda p, t: _write(p, _members(), [("..\\escaped.txt", b"x")])),
    "absolute": ("leaves the archive", lambda p, t: _write(p, _members(), [(str(t / "escaped_absolute.txt"), b"x")])),
    # A link member, and the model's own member as a link to a file outside.
    "symlink": ("symbolic link", lambda p, t: _write(p, _members(), [_symlink("assets/link", "../../escaped.txt")])),
    "symlink_config": ("symbolic link", lambda p, t: _write(
        p, {k: v for k, v in _members().items() if k != "config.json"}, [_symlink("config.json", "/etc/passwd")])),
    # Headers whose sizes lie: far more than deflate can give from the stored bytes, or fewer
    # bytes than the member holds (an extraction trusting the stream would write past it).
    "declared_4gib": ("more than deflate can produce", lambda p, t: (
        _write(p, _members()), _declare_size(p, "model.weights.h5", 0xFFFFFFF0))),
    "declared_smaller": ("holds more than the 100 bytes its header declares", lambda p, t: (
        _write(p, _members()), _declare_size(p, "model.weights.h5", 100))),
    "config_declared_smaller": ("holds more than the 10 bytes its header declares", lambda p, t: (
        _write(p, _members()), _declare_size(p, "config.json", 10))),
    # A real bomb: 64 MiB of zeros in 64 KB, as its header honestly says (under the 256 MiB
    # from which the expansion is limited: refused at its first bytes, which are not HDF5's).
    "zip_bomb": ("not an HDF5 file", lambda p, t: _zip_bomb(p, 64 << 20)),
    # 300 MiB in 300 KB whose first bytes are the model's real weights file, then zeros: it
    # passes the signature check, and is refused before extraction for its expansion (1,000:1
    # over the members Ferry reads, against a limit of 100).
    "zip_bomb_hdf5": ("expand 1", lambda p, t: _zip_bomb(p, 300 << 20, _members()["model.weights.h5"])),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_keras_zip_is_refused_and_writes_nothing(case, tmp_path):
    words, make = CASES[case]
    model = tmp_path / "hostile.keras"
    make(model, tmp_path)
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    temp = tmp_path / "tmp"
    temp.mkdir()
    before = _tree(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(temp), "FERRY_PROBE_TIMEOUT": "30"}
    for args in (["inspect", model], ["convert", model, work / "out.onnx"]):
        # FERRY may be relative to the repository (make test): resolved before changing folder.
        result = subprocess.run([os.path.abspath(FERRY), *map(str, args)], capture_output=True, text=True, timeout=120,
                                errors="replace", cwd=work, env=env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
        assert len(lines) == 1 and lines[0].startswith(f"error: {model}: "), result.stderr[-2000:]
        assert words in lines[0], lines[0]
        assert _tree(tmp_path) == before, "nothing is written, anywhere"
    assert not os.path.lexists(tmp_path / "escaped.txt") and not os.path.lexists(tmp_path / "escaped_absolute.txt")


def test_the_hostile_zips_hold_what_they_claim(tmp_path):
    """The cases above are what they say: Python's zipfile lists the escaping names and the link,
    and the bomb's declared size is its real size."""
    model = tmp_path / "m.keras"
    CASES["deep_parent"][1](model, tmp_path)
    assert "assets/../../../escaped.txt" in zipfile.ZipFile(model).namelist()
    CASES["symlink"][1](model, tmp_path)
    info = zipfile.ZipFile(model).getinfo("assets/link")
    assert (info.external_attr >> 16) & 0o170000 == 0o120000
    _zip_bomb(model, 4 << 20)
    with zipfile.ZipFile(model) as z:
        info = z.getinfo("model.weights.h5")
        assert info.file_size == 4 << 20 and len(z.read("model.weights.h5")) == 4 << 20
        assert info.compress_size * 100 < info.file_size
        assert z.read("config.json") == _members()["config.json"]


def test_the_expansion_limit_is_overridable_and_extraction_leaves_nothing(tmp_path):
    """FERRY_ZIP_MAX_RATIO raises the limit for a model that does expand that far (a real weights
    file followed by zeros: libhdf5 reads it, past its end is ignored): the file is read, and the
    300 MiB temporary copies (the probing child's and the command's) are gone afterwards."""
    model = tmp_path / "zeros.keras"
    _zip_bomb(model, 300 << 20, _members()["model.weights.h5"])
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(temp), "FERRY_PROBE_TIMEOUT": "60"}
    refused = subprocess.run([FERRY, "inspect", str(model)], capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 2 and "FERRY_ZIP_MAX_RATIO" in refused.stderr, refused.stderr
    result = subprocess.run([FERRY, "inspect", str(model)], capture_output=True, text=True, timeout=120,
                            env=env | {"FERRY_ZIP_MAX_RATIO": "2000"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dense1" in result.stdout
    assert list(temp.iterdir()) == []
