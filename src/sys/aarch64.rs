//! aarch64 glue: svc instruction, fork-style clone, `_start`.
use core::arch::asm;

#[inline(always)]
pub unsafe fn syscall1(n: usize, a1: usize) -> isize {
    let ret;
    asm!("svc 0", in("x8") n, inlateout("x0") a1 as isize => ret, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a1: usize, a2: usize) -> isize {
    let ret;
    asm!("svc 0", in("x8") n, inlateout("x0") a1 as isize => ret, in("x1") a2, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    asm!("svc 0", in("x8") n, inlateout("x0") a1 as isize => ret, in("x1") a2, in("x2") a3,
         options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret;
    asm!("svc 0", in("x8") n, inlateout("x0") a1 as isize => ret, in("x1") a2, in("x2") a3,
         in("x3") a4, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let ret;
    asm!("svc 0", in("x8") n, inlateout("x0") a1 as isize => ret, in("x1") a2, in("x2") a3,
         in("x3") a4, in("x4") a5, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> isize {
    let ret;
    asm!("svc 0", in("x8") n, inlateout("x0") a1 as isize => ret, in("x1") a2, in("x2") a3,
         in("x3") a4, in("x4") a5, in("x5") a6, options(nostack));
    ret
}

/// clone(SIGCHLD, NULL, NULL, 0, NULL): aarch64 order is flags, stack, ptid, tls, ctid.
#[inline(always)]
#[cfg(all(not(test), feature = "rt"))]
pub unsafe fn clone_sigchld() -> isize {
    syscall5(linux_raw_sys::general::__NR_clone as usize, linux_raw_sys::general::SIGCHLD as usize, 0, 0, 0, 0)
}

#[cfg(all(not(test), feature = "rt"))]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,%function",
    "_start:",
    "mov x29, #0",
    "mov x30, #0",
    "mov x0, sp",
    "and x1, x0, #-16",
    "mov sp, x1",
    "bl {entry}",
    "brk #0",
    entry = sym super::start::keel_start,
);

// Freestanding memory routines. Volatile writes keep LLVM from compiling the loops back
// into calls to the functions being defined.
#[cfg(all(not(test), feature = "rt"))]
mod mem {
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        let mut i = 0;
        while i < n {
            core::ptr::write_volatile(dst.add(i), *src.add(i));
            i += 1;
        }
        dst
    }

    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dst as usize).wrapping_sub(src as usize) >= n {
            return memcpy(dst, src, n);
        }
        let mut i = n;
        while i > 0 {
            i -= 1;
            core::ptr::write_volatile(dst.add(i), *src.add(i));
        }
        dst
    }

    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
        let mut i = 0;
        while i < n {
            core::ptr::write_volatile(dst.add(i), c as u8);
            i += 1;
        }
        dst
    }

    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        super::super::cmp_bytes(a, b, n)
    }

    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        super::super::cmp_bytes(a, b, n)
    }
}

/// compiler_builtins' CPU-feature probes (outline atomics) reference getauxval. Their
/// constructors never run without a C runtime, so atomics take the portable path; the
/// symbol only has to exist and answer truthfully.
#[cfg(all(not(test), feature = "rt"))]
#[no_mangle]
extern "C" fn getauxval(kind: core::ffi::c_ulong) -> core::ffi::c_ulong {
    let (hwcap, hwcap2) = rustix::param::linux_hwcap();
    // AT_HWCAP and AT_HWCAP2 (linux/auxvec.h).
    match kind {
        16 => hwcap as _,
        26 => hwcap2 as _,
        _ => 0,
    }
}
