//! Program start: turn the initial stack into `Args`, initialise rustix, call `keel_main`.

/// argv and envp as the kernel passed them.
#[derive(Copy, Clone)]
pub struct Args {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
}

extern "Rust" {
    /// Defined by the binary (src/main.rs).
    fn keel_main(args: Args) -> !;
}

/// Called by `_start` with the initial stack pointer.
pub unsafe extern "C" fn keel_start(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack holds argc, then argc argv pointers and a NULL,
    // then the envp pointers ending in NULL, then auxv.
    let argc = *sp;
    let argv = sp.add(1) as *const *const u8;
    let envp = argv.add(argc + 1);
    // SAFETY: envp is the original environment block; this runs before any other rustix call.
    rustix::param::init(envp as *mut *mut u8);
    keel_main(Args { argc, argv, envp })
}

impl Args {
    /// Argument `i` (0 is the program name), without its NUL.
    #[inline(never)] // smaller out of line (`just size`)
    pub fn arg(&self, i: usize) -> Option<&'static [u8]> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc, and the kernel-provided strings live for the whole process.
        unsafe { Some(c_bytes(*self.argv.add(i))) }
    }

    pub fn len(&self) -> usize {
        self.argc
    }

    /// Iterate over the environment, `KEY=value` byte strings.
    pub fn env(&self) -> impl Iterator<Item = &'static [u8]> {
        let mut p = self.envp;
        core::iter::from_fn(move || {
            // SAFETY: envp is NULL-terminated; we stop at the NULL and never step past it.
            unsafe {
                if p.is_null() || (*p).is_null() {
                    return None;
                }
                let s = c_bytes(*p);
                p = p.add(1);
                Some(s)
            }
        })
    }

    /// The raw argv array (NULL-terminated), for exec'ing with the same arguments.
    pub fn argv_ptr(&self) -> *const *const u8 {
        self.argv
    }

    pub fn envp_ptr(&self) -> *const *const u8 {
        self.envp
    }
}

/// SAFETY: `p` must point at a NUL-terminated string that lives for the whole process.
unsafe fn c_bytes(p: *const u8) -> &'static [u8] {
    core::ffi::CStr::from_ptr(p.cast()).to_bytes()
}
