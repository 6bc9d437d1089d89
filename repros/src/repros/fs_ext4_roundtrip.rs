//! `fs_ext4_roundtrip`: data written to ext4, fsync'd and renamed is there
//! after an unmount and a fresh mount, and the kernel logs nothing bad on
//! the way.

use repros::prelude::*;
use rustix::mount::MountFlags;

pub const REPRO: Repro = Repro {
    name: "fs_ext4_roundtrip",
    description: "on an ext4 disk at /dev/vda: write, fsync and rename a file, unmount, mount again and read it back",
    config: &["BLOCK", "BLK_DEV", "VIRTIO_BLK", "EXT4_FS"],
    disks: &["new:64M:ext4"],
    run,
    ..Repro::DEFAULT
};

const DISK: &str = "/dev/vda";
const MNT: &str = "/mnt";
const TMP: &str = "/mnt/krepro.tmp";
const DAT: &str = "/mnt/krepro.dat";
/// Enough to span many blocks and an extent or two.
const SIZE: usize = 256 << 10;

fn run(cx: &mut Cx) -> Result {
    if let Err(errno) = rustix::fs::stat(DISK) {
        return Ok(Verdict::Skip(format!("needs --disk new:64M:ext4 ({DISK}: {})", Error::Errno { step: "stat", errno })));
    }
    cx.mkdir_all(MNT)?;
    let mark = cx.kmsg_mark()?;
    match cx.mount(DISK, MNT, "ext4", MountFlags::empty(), None) {
        Err(e) if e.errno() == Some(Errno::NODEV) => {
            return Ok(Verdict::Skip(format!("the kernel has no ext4: {}", e.in_step("mount -t ext4"))))
        }
        other => other.step("mount /dev/vda on /mnt")?,
    }
    let data: Vec<u8> = (0..SIZE).map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8).collect();
    let file = cx.create_file(TMP, &data).step("write /mnt/krepro.tmp")?;
    cx.fsync(&file).step("fsync /mnt/krepro.tmp")?;
    drop(file);
    cx.rename(TMP, DAT).step("rename to /mnt/krepro.dat")?;
    cx.fsync_path(MNT).step("fsync /mnt")?;
    cx.umount(MNT).step("umount /mnt")?;

    cx.mount(DISK, MNT, "ext4", MountFlags::empty(), None).step("mount /dev/vda on /mnt again")?;
    let back = cx.read_file(DAT);
    let old = cx.read_file(TMP);
    cx.umount(MNT).step("umount /mnt")?;
    if let Some(line) = splat(&cx.kmsg_since(mark)?) {
        return Ok(Verdict::Fail(format!("kernel log: {line}")));
    }
    let back = match back {
        Ok(back) => back,
        Err(errno) => return Ok(Verdict::Fail(format!("after a remount, {}", Error::Errno { step: "read /mnt/krepro.dat", errno }))),
    };
    if old.is_ok() {
        return Ok(Verdict::Fail("after a remount, /mnt/krepro.tmp is still there, renamed away before".into()));
    }
    if back != data {
        let at = back.iter().zip(&data).position(|(a, b)| a != b).unwrap_or(back.len().min(data.len()));
        return Ok(Verdict::Fail(format!("read back {} of {SIZE} bytes, differing from byte {at}", back.len())));
    }
    println!(cx, "fs_ext4_roundtrip: {SIZE} bytes written, renamed and read back after a remount");
    Ok(Verdict::Pass)
}
