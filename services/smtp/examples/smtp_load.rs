//! SMTP load: N sessions send M messages of S bytes in total, one transaction after
//! another on each connection (as Postfix's smtp-source does), and report the rate and the
//! latency from the end of DATA to the server's 250.
//!
//!     smtp_load HOST:PORT SESSIONS MESSAGES SIZE FROM TO

use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            panic!("connection closed");
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        all.push_str(&line);
        if last {
            return all;
        }
    }
}

async fn expect(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) {
    let got = reply(r).await;
    assert!(got.starts_with(code), "expected {code}, got {got}");
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 6 {
        eprintln!("usage: smtp_load HOST:PORT SESSIONS MESSAGES SIZE FROM TO");
        std::process::exit(2);
    }
    let (addr, sessions, total, size) = (
        a[0].clone(),
        a[1].parse::<usize>().unwrap(),
        a[2].parse::<usize>().unwrap(),
        a[3].parse::<usize>().unwrap(),
    );
    let (from, to) = (a[4].clone(), a[5].clone());
    let mut body = format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: load\r\n\r\n").into_bytes();
    while body.len() < size {
        body.extend_from_slice(
            b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n",
        );
    }
    body.extend_from_slice(b".\r\n");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let n = total / sessions + usize::from(s < total % sessions);
        let (addr, from, to, body) = (addr.clone(), from.clone(), to.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let (rd, mut wr) = stream.into_split();
            let mut rd = BufReader::new(rd);
            expect(&mut rd, "220").await;
            wr.write_all(b"EHLO load.example\r\n").await.unwrap();
            expect(&mut rd, "250").await;
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                wr.write_all(
                    format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes(),
                )
                .await
                .unwrap();
                expect(&mut rd, "250").await;
                expect(&mut rd, "250").await;
                expect(&mut rd, "354").await;
                wr.write_all(&body).await.unwrap();
                let t = Instant::now();
                expect(&mut rd, "250").await;
                lat.push(t.elapsed());
            }
            wr.write_all(b"QUIT\r\n").await.unwrap();
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{} messages in {secs:.2} s: {:.0} msg/s; end of DATA to 250: p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        lat.len() as f64 / secs,
        pct(50),
        pct(99)
    );
}
