//! Durable single-item writes per second with N concurrent writers.
//!
//! Each write stages a 512-byte body as a blob and puts an item referring to it; the write
//! counts when the store acknowledges it (redb commit with fsync, blob synced).
//!
//!     cargo run --release -p bureau-store --example write_bench -- [DIR] [WRITERS...]

use bureau_store::*;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut writers: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    if writers.is_empty() {
        writers = vec![1, 16, 64];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("writers\twrites\tseconds\twrites/s\tp99 ms");
    for n in writers {
        let dir = tempfile::tempdir_in(&base).unwrap();
        let durable = std::env::var("BENCH_NO_FSYNC").is_err();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                durable,
                ..Default::default()
            },
        )
        .unwrap();
        let coll = store
            .write_blocking(Actor::System, vec![], |w| {
                let p = w.create_principal(PrincipalKind::User, "bench", None)?;
                w.create_collection(p.id, CollectionKind::Mailbox, "INBOX")
            })
            .unwrap()
            .id;
        // Enough writes for a few seconds at any concurrency.
        let per_writer = (20_000 / n).max(200);
        let started = Instant::now();
        let latencies = rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..n {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_writer);
                    for i in 0..per_writer {
                        let t = Instant::now();
                        let mut body = format!("{w}:{i}:").repeat(128).into_bytes();
                        body.truncate(512);
                        let staged = store.stage(body, Content::Data).await.unwrap();
                        let blob = staged.blob_ref();
                        store
                            .write(Actor::System, vec![staged], move |wr| {
                                wr.put_item(
                                    coll,
                                    NewItem {
                                        blob: Some(blob),
                                        ..Default::default()
                                    },
                                )
                            })
                            .await
                            .unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                }));
            }
            let mut all: Vec<Duration> = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let secs = started.elapsed().as_secs_f64();
        let mut lat = latencies;
        lat.sort();
        let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
        println!(
            "{n}\t{}\t{secs:.2}\t{:.0}\t{:.2}",
            lat.len(),
            lat.len() as f64 / secs,
            p99.as_secs_f64() * 1000.0
        );
    }
}
