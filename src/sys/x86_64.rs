//! x86_64 glue: syscall instruction, fork-style clone, `_start`.
use core::arch::asm;

#[inline(always)]
pub unsafe fn syscall1(n: usize, a1: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a1: usize, a2: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
         in("r10") a4, lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
         in("r10") a4, in("r8") a5, lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
         in("r10") a4, in("r8") a5, in("r9") a6, lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// clone(SIGCHLD, NULL, NULL, NULL, 0): x86_64 argument order is flags, stack, ptid, ctid, tls.
#[inline(always)]
#[cfg(all(not(test), feature = "rt"))]
pub unsafe fn clone_sigchld() -> isize {
    syscall5(linux_raw_sys::general::__NR_clone as usize, linux_raw_sys::general::SIGCHLD as usize, 0, 0, 0, 0)
}

// Program entry: the kernel leaves argc, argv[], NULL, envp[], NULL, auxv on the stack.
#[cfg(all(not(test), feature = "rt"))]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym super::start::keel_start,
);

// Freestanding memory routines (no libc is linked). `rep movsb`/`rep stosb` are short and
// fast on every x86_64 since Ivy Bridge (ERMSB).
#[cfg(all(not(test), feature = "rt"))]
mod mem {
    use core::arch::asm;

    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
        dst
    }

    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dst as usize).wrapping_sub(src as usize) >= n {
            // No harmful overlap: dst is before src, or past its end.
            return memcpy(dst, src, n);
        }
        // dst overlaps the tail of src: copy backwards.
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dst.add(n).wrapping_sub(1) => _,
             inout("rsi") src.add(n).wrapping_sub(1) => _, options(nostack));
        dst
    }

    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
             options(nostack, preserves_flags));
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
