//! The scraper's Spin cron component (world `fermyon:spin-cron/spin-cron@2.0.0`): each
//! cron event runs one scraper tick (`scraper::tick`). Build it with
//! `bash scripts/build-components.sh scraper` (`build/components/scraper.wasm`).
//!
//! The export lives in a crate of its own so that only this component has it: as part of
//! the scraper library, it was linked into every wasm that links the scraper — the shows
//! component exported a cron handler too, with a second copy of the tick (~23 KB,
//! measured before the components were linked with LTO).

#[cfg(target_os = "wasi")]
#[allow(unsafe_code)] // wit-bindgen's export glue
mod entry {
    spin_sdk::wit_bindgen::generate!({
        world: "spin-cron",
        path: "../../wit/spin-cron.wit",
        runtime_path: "::spin_sdk::wit_bindgen::rt",
    });

    struct Cron;

    impl Guest for Cron {
        fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
            let env = kit::host::spin::env(kit::host::spin::Uses {
                fetch: true,
                ..kit::host::spin::Uses::NOTHING
            });
            let now = env.clock.now();
            spin_sdk::http::run(async move {
                match scraper::tick(&env, now).await {
                    // `tick` wrote the tick's log line.
                    Ok(_) => Ok(()),
                    Err(e) => Err(Error::Other(e.to_string())),
                }
            })
        }
    }

    export!(Cron);
}
