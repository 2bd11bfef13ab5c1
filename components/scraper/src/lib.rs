//! The scraper's Spin cron component (world `fermyon:spin-cron/spin-cron@2.0.0`): each
//! cron event runs one scraper tick (`tvmaze_scraper::tick`). Build it with
//! `bash scripts/build-components.sh scraper` (`build/components/scraper.wasm`).
//!
//! The export lives in a crate of its own so that only this component has it: as part of
//! the scraper library, it was linked into every wasm that links the scraper — the shows
//! component exported a cron handler too, with a second copy of the tick (~23 KB,
//! measured before the components were linked with LTO).

/// One scraper tick; `tick` writes the tick's log line.
#[cfg(target_os = "wasi")]
async fn tick(env: &kit::Env) -> Result<(), String> {
    let now = env.clock.now();
    match tvmaze_scraper::tick(env, now).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(target_os = "wasi")]
kit::spin_cron_component!(crate::tick, uses: [fetch]);
