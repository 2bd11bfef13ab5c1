//! The host wings: how each runtime builds an [`Env`](crate::Env), hands requests in,
//! and stores tables. Everything that names `spin_sdk` or `wasi` is in [`spin`] (its
//! key-value backend included), everything that names `worker` in [`workers`] (its
//! Durable Object and KV backends and the Worker's entry points); the rest of `kit` is
//! platform-neutral. This module holds what several hosts share (clock, randomness,
//! log sink).

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod dir_files;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_os = "wasi")]
pub mod spin;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod workers;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use dir_files::DirFiles;

/// The Workers runtime's randomness (no OS source there), under the name the other
/// hosts' has.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use workers::random as os_random;

/// A random u64 from std's per-process random hasher keys, which come from the OS
/// (`getrandom`, or WASI `random` on wasip2).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub fn os_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// The log sink of hosts with a standard output (native, Spin): one line to stdout.
/// A failed write drops the line: logging must never fail (or panic) a request.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub fn stdout_log(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// A sink that drops every line: unit tests that do not look at logs.
pub fn discard_log(_line: &str) {}

/// The clock of hosts where `SystemTime` works (native, WASI).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
#[async_trait::async_trait(?Send)]
impl crate::Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from(std::time::SystemTime::now())
    }

    /// On WASI a blocking sleep (`wasi:clocks` subscribe + poll): a Spin instance
    /// serves one request, so there is nothing else to run meanwhile.
    #[cfg(target_os = "wasi")]
    async fn sleep(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    /// Natively a timer thread wakes the task, so no executor thread is blocked and
    /// the core needs no async runtime of its own.
    #[cfg(not(target_os = "wasi"))]
    async fn sleep(&self, ms: u64) {
        ThreadSleep::new(std::time::Duration::from_millis(ms)).await;
    }
}

/// A future that is ready once a timer thread has slept for its duration.
#[cfg(not(target_arch = "wasm32"))]
struct ThreadSleep {
    duration: std::time::Duration,
    state: std::sync::Arc<std::sync::Mutex<SleepState>>,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Default)]
struct SleepState {
    started: bool,
    done: bool,
    waker: Option<std::task::Waker>,
}

#[cfg(not(target_arch = "wasm32"))]
impl ThreadSleep {
    fn new(duration: std::time::Duration) -> Self {
        Self {
            duration,
            state: Default::default(),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl std::future::Future for ThreadSleep {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        // A poisoned lock only means a timer thread panicked; treat the wait as over.
        let Ok(mut state) = self.state.lock() else {
            return std::task::Poll::Ready(());
        };
        if state.done || self.duration.is_zero() {
            return std::task::Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        if !state.started {
            state.started = true;
            let (shared, duration) = (self.state.clone(), self.duration);
            std::thread::spawn(move || {
                std::thread::sleep(duration);
                if let Ok(mut state) = shared.lock() {
                    state.done = true;
                    if let Some(waker) = state.waker.take() {
                        waker.wake();
                    }
                }
            });
        }
        std::task::Poll::Pending
    }
}

/// Declares an endpoint crate's Spin HTTP component:
/// `kit::spin_http_component!(handle);`, or `kit::spin_http_component!(handle, uses:
/// [fetch, files]);` for a component that makes outbound requests or serves static
/// files (see [`spin::Uses`]), where `handle` is the crate's
/// `async fn(Request, &Env) -> Response`. Expands, on wasm32-wasip2 only, to the
/// crate's entry module — the one place that names `spin_sdk` — so every component
/// enters the core the same way.
#[macro_export]
macro_rules! spin_http_component {
    ($handle:path) => {
        $crate::spin_http_component!($handle, uses: []);
    };
    ($handle:path, uses: [$($uses:ident),* $(,)?]) => {
        #[cfg(target_os = "wasi")]
        #[allow(unsafe_code)] // the SDK's macro expands to FFI glue
        mod spin_entry {
            #[::spin_sdk::http_component]
            async fn handle(
                req: ::spin_sdk::http::IncomingRequest,
                out: ::spin_sdk::http::ResponseOutparam,
            ) {
                let env = ::kit::host::spin::env(::kit::host::spin::Uses {
                    $($uses: true,)*
                    ..::kit::host::spin::Uses::NOTHING
                });
                let response = match ::kit::host::spin::request(req).await {
                    Ok(req) => $handle(req, &env).await,
                    Err(response) => response,
                };
                ::kit::host::spin::respond(out, response).await
            }
        }
    };
}

/// The Spin cron component entry (world `fermyon:spin-cron/spin-cron@2.0.0`, from
/// `wit/spin-cron.wit`): each cron event runs `$run(&env)`, an
/// `async fn(&kit::Env) -> Result<(), String>`, with the host adapters named in
/// `uses` (as [`spin_http_component!`]); its error is the event's. Expands to nothing
/// off Spin. Only a crate of its own should use it, so that only that component exports
/// a cron handler.
#[macro_export]
macro_rules! spin_cron_component {
    ($run:path) => {
        $crate::spin_cron_component!($run, uses: []);
    };
    ($run:path, uses: [$($uses:ident),* $(,)?]) => {
        #[cfg(target_os = "wasi")]
        #[allow(unsafe_code)] // wit-bindgen's export glue
        mod spin_cron_entry {
            ::spin_sdk::wit_bindgen::generate!({
                world: "spin-cron",
                path: "../../wit/spin-cron.wit",
                runtime_path: "::spin_sdk::wit_bindgen::rt",
            });

            struct Cron;

            impl Guest for Cron {
                fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
                    let env = ::kit::host::spin::env(::kit::host::spin::Uses {
                        $($uses: true,)*
                        ..::kit::host::spin::Uses::NOTHING
                    });
                    ::spin_sdk::http::run(async move { $run(&env).await.map_err(Error::Other) })
                }
            }

            export!(Cron);
        }
    };
}
