#!/usr/bin/env bash
# Regenerates the test vectors in this directory from real images (Debian 12 tools:
# apt-get install -y e2fsprogs xfsprogs btrfs-progs dosfstools squashfs-tools erofs-utils
# fdisk gdisk). Only the byte windows the parsers read are kept; `blkid -p` (or, for
# partitions, `partx`, which is libblkid too) of each image goes to blkid.txt: those are the
# expected values in the unit tests. UUIDs and labels are fixed; timestamps, hash seeds and
# btrfs's device UUID are not, so a rerun changes bytes but not the expected values.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
report="$out/blkid.txt"
: >"$report"

# cut IMAGE OFFSET LENGTH NAME: bytes OFFSET..OFFSET+LENGTH of IMAGE into NAME.
cut() { dd if="$1" of="$out/$4" bs=1 skip="$2" count="$3" status=none; }
probe() { blkid -p "$1" | sed "s|^$work/||" >>"$report"; }

# erofs_label.py: write an erofs volume name and recompute the superblock checksum.
cat >erofs_label.py <<'PY'
import struct, sys
def crc32c_raw(crc, data):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc
path, label = sys.argv[1], sys.argv[2].encode()
img = bytearray(open(path, 'rb').read())
sb = 1024
img[sb + 64:sb + 80] = label.ljust(16, b'\0')
img[sb + 4:sb + 8] = b'\0' * 4
blksz = 1 << img[sb + 12]
crc = crc32c_raw(0xffffffff, img[sb:blksz])
img[sb + 4:sb + 8] = struct.pack('<I', crc)
open(path, 'wb').write(img)
PY

truncate -s 8M ext4.img
mkfs.ext4 -q -b 4096 -U 0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b -L keel-root ext4.img
probe ext4.img; cut ext4.img 0 4096 ext4.sb
truncate -s 8M ext3.img
mkfs.ext3 -q -U 1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9 -L old-ext3 ext3.img
probe ext3.img; cut ext3.img 0 4096 ext3.sb
truncate -s 4M ext2.img
mkfs.ext2 -q -U 2c3d4e5f-6071-4829-93a4-b5c6d7e8f901 -L plain ext2.img
probe ext2.img; cut ext2.img 0 4096 ext2.sb

truncate -s 300M xfs.img
mkfs.xfs -q -m uuid=3d4e5f60-7182-493a-a4b5-c6d7e8f90a1b -L keel-xfs xfs.img
probe xfs.img; cut xfs.img 0 4096 xfs.sb
truncate -s 300M xfs4k.img
mkfs.xfs -q -s size=4096 -m uuid=3d4e5f60-7182-493a-a4b5-c6d7e8f90a1c -L xfs-4k-sect xfs4k.img
probe xfs4k.img; cut xfs4k.img 0 4096 xfs4k.sb

truncate -s 128M btrfs.img
mkfs.btrfs -q -U 4e5f6071-8293-4a4b-b5c6-d7e8f90a1b2c -L keel-btrfs btrfs.img
probe btrfs.img; cut btrfs.img 65536 4096 btrfs.sb

mkdir tree; echo hello >tree/hello.txt; touch -d @1700000000 tree/hello.txt tree
mksquashfs tree squashfs.img -noappend -quiet -mkfs-time 1700000000 -all-time 1700000000 -all-root >/dev/null
probe squashfs.img; cut squashfs.img 0 4096 squashfs.sb
mkfs.erofs -T 1700000000 -U 5f607182-93a4-4b5c-86d7-e8f90a1b2c3d erofs.img tree >/dev/null 2>&1
probe erofs.img; cut erofs.img 0 4096 erofs.sb
# erofs-utils 1.5 has no -L: the label is written by hand, the checksum recomputed.
cp erofs.img erofs-label.img; python3 erofs_label.py erofs-label.img keel-erofs
probe erofs-label.img; cut erofs-label.img 0 4096 erofs-label.sb

mkfs.fat -C -F 12 -i 1a2b3c4d -n KEEL-FAT12 fat12.img 1440 >/dev/null
probe fat12.img; cut fat12.img 0 4096 fat12.boot; cut fat12.img 9728 4096 fat12.root
# The label as Windows changes it: only the root-directory entry.
mkfs.fat -C -F 16 -i 2b3c4d5e -n KEEL-FAT16 fat16.img 16384 >/dev/null
printf 'WIN LABEL  ' | dd of=fat16.img bs=1 seek=34816 conv=notrunc status=none
probe fat16.img; cut fat16.img 0 4096 fat16.boot; cut fat16.img 34816 4096 fat16.root
mkfs.fat -C -F 16 -i 00000000 fat16-noid.img 16384 >/dev/null
probe fat16-noid.img; cut fat16-noid.img 0 4096 fat16-noid.boot
mkfs.fat -C -F 32 -i 3c4d5e6f -n KEEL-ESP fat32.img 65536 >/dev/null
probe fat32.img; cut fat32.img 0 4096 fat32.boot; cut fat32.img 16384 512 fat32.fat
cut fat32.img 1049600 512 fat32.root
mkfs.fat -C -F 32 -S 4096 -s 1 -i 4d5e6f70 -n BIG-SECTOR fat32-4k.img 300000 >/dev/null
probe fat32-4k.img; cut fat32-4k.img 0 4096 fat32-4k.boot; cut fat32-4k.img 131072 4096 fat32-4k.fat
cut fat32-4k.img 737280 4096 fat32-4k.root

truncate -s 64M gpt.img
sgdisk -U 6a7b8c9d-0e1f-4a2b-9c3d-4e5f60718293 \
    -n 1:2048:+8M -t 1:ef00 -u 1:11223344-5566-4778-899a-abbccddeeff0 -c 1:esp \
    -n 2:0:+16M -t 2:8304 -u 2:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d -c 2:root \
    -n 4:0:+4M -t 4:8300 -u 4:deadbeef-0001-4002-8003-000000000004 -c 4:data gpt.img >/dev/null
probe gpt.img; partx -s -o NR,START,SECTORS,UUID,TYPE gpt.img >>"$report"
cut gpt.img 0 17408 gpt.lba0-33

truncate -s 64M gpt-4k.img
printf '%s\n' g n 1 '' +8M n 2 '' +16M x i 7b8c9d0e-1f2a-4b3c-8d4e-5f6071829304 \
    u 1 22334455-6677-4889-9aab-bccddeeff001 u 2 b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e r w |
    fdisk -b 4096 gpt-4k.img >/dev/null
echo "fdisk -b 4096 -l gpt-4k.img:" >>"$report"; fdisk -b 4096 -l gpt-4k.img | sed "s|$work/||" >>"$report"
echo "partx -S 4096 (START and SECTORS in 512-byte units):" >>"$report"
partx -S 4096 -s -o NR,START,SECTORS,UUID,TYPE gpt-4k.img >>"$report"
cut gpt-4k.img 0 24576 gpt-4k.lba0-5

truncate -s 64M mbr.img
sfdisk -q mbr.img <<'SF'
label: dos
label-id: 0x5eed1234
start=2048, size=16384, type=83, bootable
start=18432, size=8192, type=c
start=26624, size=81920, type=5
start=28672, size=8192, type=83
start=38912, size=16384, type=82
start=57344, size=4096, type=83
SF
probe mbr.img; partx -s -o NR,START,SECTORS,UUID,TYPE mbr.img >>"$report"
cut mbr.img 0 512 mbr.lba0
for lba in 26624 36864 55296; do cut mbr.img $((lba * 512)) 512 mbr.lba$lba; done
