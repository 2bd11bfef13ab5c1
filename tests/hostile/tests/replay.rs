//! Replays every input kept for the fuzz targets — the corpus the fuzzer grew
//! (`fuzz/corpus/<target>/`) and each input that once found a bug
//! (`fuzz/regressions/<target>/`) — through the same functions, on stable: what the
//! fuzzer found stays found. `make fuzz` grows the corpus; see `fuzz/README.md`.

use std::path::Path;

fn inputs(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for (target, run) in hostile::TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in inputs(&root.join(kind).join(target)) {
                let Ok(data) = std::fs::read(&file) else {
                    panic!("cannot read {}", file.display());
                };
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target}: {} fails", file.display());
                replayed += 1;
            }
        }
    }
    println!("replayed {replayed} kept inputs");
    assert!(
        replayed >= hostile::TARGETS.len(),
        "no kept inputs under {}",
        root.display()
    );
}
