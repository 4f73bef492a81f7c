"""Disk images for the QEMU tests, made on the host without loop mounts or root: a directory
tree becomes an ext4 filesystem with `mkfs.ext4 -d` (at a byte offset into a partitioned
image with `-E offset=`), partition tables come from sfdisk scripts with fixed identifiers,
vfat from `mkfs.vfat --offset`. Everything is fixed (UUIDs, labels, disk ids), so a test
names its root= before the image exists.

    tree = disk.root_tree(tmp / "tree", init=keel, db=keel_db, files={"etc/root-id": "uuid"})
    disk.blank(img, 64)
    parts = disk.partition(img, "gpt", [disk.Part(8, disk.GPT_ESP, uuid=...), disk.Part(40, disk.GPT_LINUX, uuid=...)])
    disk.vfat(img, parts[0], label="KEEL-BOOT")
    disk.ext4(img, tree, parts[1], uuid=..., label=...)

`compile_config(toml)` gives the compiled form keel reads at /etc/keel/keel.db (keel-config's
compiler through `cargo run --example compile`, cached by the text's hash in
target/qemu-tests/db/).

A real distribution's root: `debian_root()` is tests/vm/fetch-debian-root's cached
debootstrap tree, and `overlay_tree(base, dest, files)` a copy of it by hard links with
files of the test's added (keel, its keel.db), for `ext4(img, dest, ...)`.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTOR = 512
# Partitions start at 1 MiB, as sfdisk and every partitioner align them.
FIRST = 2048
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
MBR_LINUX = "83"
MBR_FAT16 = "6"
# Busybox applets a root needs for the tests' shell lines (linked to /bin/busybox).
APPLETS = "sh cat echo ls grep sed stat sync sleep mount umount dd md5sum head tail tr wc".split()


# The host tools the disk tests run, by the Debian package that has each.
TOOLS = {"mkfs.ext4": "e2fsprogs", "e2fsck": "e2fsprogs", "debugfs": "e2fsprogs", "dumpe2fs": "e2fsprogs",
         "sfdisk": "fdisk", "mkfs.vfat": "dosfstools"}


def find_tool(name):
    """A tool's path, in /usr/sbin too (not on a non-root user's PATH), or None."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def tool(name):
    """A tool of TOOLS by its path, or a failure naming its package."""
    path = find_tool(name)
    if not path:
        raise AssertionError(f"{name} is missing: apt-get install -y {TOOLS[name]}")
    return path


def run(*cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


@dataclass
class Part:
    size_mib: int
    type: str
    uuid: str = None  # GPT only: the PARTUUID
    name: str = None  # GPT only
    start: int = 0  # in bytes, set by `partition`
    size: int = 0


def blank(image, size_mib):
    with open(image, "wb") as f:
        f.truncate(size_mib << 20)


def partition(image, label, parts, disk_id=None):
    """Write a GPT or MBR ("dos") table; each part gets its start and size in bytes, in order
    from 1 MiB, back to back."""
    lines = [f"label: {label}", "unit: sectors"]
    if disk_id:
        lines.append(f"label-id: {disk_id}")
    sector = FIRST
    for p in parts:
        fields = [f"start={sector}", f"size={p.size_mib << 11}", f"type={p.type}"]
        if p.uuid:
            fields.append(f"uuid={p.uuid}")
        if p.name:
            fields.append(f'name="{p.name}"')
        lines.append(", ".join(fields))
        p.start, p.size = sector * SECTOR, p.size_mib << 20
        sector += p.size_mib << 11
    r = subprocess.run([tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", str(image)],
                       input="\n".join(lines) + "\n", capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        raise AssertionError(f"sfdisk failed: {r.stderr}")
    return parts


def ext4(image, tree, part=None, uuid=None, label=None, features=None, size_mib=None):
    """An ext4 filesystem of `tree`'s contents, in `part` (or the whole image)."""
    cmd = [tool("mkfs.ext4"), "-F", "-q", "-d", tree, "-E", "root_owner=0:0"]
    if part:
        cmd[-1] += f",offset={part.start}"
    if uuid:
        cmd += ["-U", uuid]
    if label:
        cmd += ["-L", label]
    if features:
        cmd += ["-O", features]
    cmd.append(image)
    if part:
        cmd.append(f"{part.size >> 10}k")
    elif size_mib:
        cmd.append(f"{size_mib << 10}k")
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"mkfs.ext4 failed: {r.stderr}")


def vfat(image, part, label, serial="2B3C4D5E"):
    run(tool("mkfs.vfat"), "--offset", part.start // SECTOR, "-n", label, "-i", serial, image, part.size >> 10)


def debugfs(image, *requests, part=None):
    """debugfs -w requests on the filesystem (at a partition's offset: `image?offset=N`)."""
    target = f"{image}?offset={part.start}" if part else str(image)
    for r in requests:
        run(tool("debugfs"), "-w", "-R", r, target)


ROOT_DIRS = ["bin", "sbin", "dev", "proc", "sys", "run", "tmp", "etc/keel", "root", "boot", "scratch", "mnt"]


def root_tree(dest, init, db=None, files=None, busybox="/bin/busybox", without=()):
    """A root filesystem: `init` as /sbin/init, busybox and its applets in /bin, the
    directories keel moves its mounts to and the tests mount on (but those `without`),
    /etc/keel/keel.db from `db` (bytes), `files` {guest path: text or bytes}; a file whose
    path ends in `*` is executable (the `*` dropped)."""
    dest = Path(dest)
    for d in ROOT_DIRS:
        if d not in without:
            (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(init, dest / "sbin/init")
    os.chmod(dest / "sbin/init", 0o755)
    shutil.copy(busybox, dest / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", dest / "bin" / applet)
    if db is not None:
        (dest / "etc/keel/keel.db").write_bytes(db)
    for path, data in (files or {}).items():
        p = dest / path.rstrip("*")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        if path.endswith("*"):
            os.chmod(p, 0o755)
    return dest


def debian_root():
    """The cached Debian minbase root (tests/vm/fetch-debian-root makes it the first time,
    a minute or two; `just debian-root` does it ahead)."""
    r = subprocess.run([str(REPO / "tests/vm/fetch-debian-root")], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"tests/vm/fetch-debian-root failed ({r.returncode}):\n{r.stderr}")
    return Path(r.stdout.strip().splitlines()[-1])


def overlay_tree(base, dest, files):
    """`base` at `dest` as hard links (`cp -al`: no data copied; a plain `cp -a` on another
    filesystem), plus `files` {guest path: text, bytes, or a host Path to copy}; a path
    ending in `*` is executable. An added file that exists in `base` is unlinked first, so
    `base` (the cache) is never written through a link. Owners and modes are `base`'s: run
    as root, as fetch-debian-root does."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    if subprocess.run(["cp", "-al", str(base), str(dest)], capture_output=True).returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        run("cp", "-a", base, dest)
    for path, data in files.items():
        p = dest / path.rstrip("*")
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.exists():
            p.unlink()
        if isinstance(data, Path):
            shutil.copyfile(data, p)
        else:
            p.write_bytes(data if isinstance(data, bytes) else data.encode())
        os.chmod(p, 0o755 if path.endswith("*") else 0o644)
    return dest


def compile_config(text, cache=REPO / "target/qemu-tests/db"):
    """The compiled form of a keel configuration (`keelctl compile`), cached."""
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / (hashlib.sha256(text.encode()).hexdigest()[:16] + ".db")
    if not out.exists():
        src = out.with_suffix(".toml")
        src.write_text(text)
        keelctl = Path(os.environ.get("KEELCTL", REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"))
        if not keelctl.is_file():
            raise AssertionError(f"{keelctl} is missing: run `just keelctl`")
        r = subprocess.run([str(keelctl), "compile", str(src), "-o", str(out)], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"compiling the configuration failed:\n{r.stderr}")
    return out.read_bytes()


def dynamic_program(program, guest):
    """`--file HOST:GUEST` arguments for mkinitramfs: a dynamically linked host program at
    `guest` with the shared libraries ldd names, at their own paths."""
    out = [f"{program}:{guest}"]
    for line in run("ldd", program).splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            out.append(f"{os.path.realpath(lib)}:{lib}")
    return out


if __name__ == "__main__":
    # `disk.py check` (just test-qemu): every tool there before the first boot, not a
    # failure per test.
    if sys.argv[1:] != ["check"]:
        sys.exit("tests/vm/disk.py is a library for the QEMU tests (tests/qemu/test_root.py); `check` checks its tools")
    missing = [name for name in TOOLS if not find_tool(name)]
    if missing:
        sys.exit(f"missing {' '.join(missing)}: apt-get install -y {' '.join(sorted({TOOLS[m] for m in missing}))}")
