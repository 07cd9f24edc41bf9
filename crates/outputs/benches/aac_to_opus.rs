//! What one stream's AAC→Opus costs: CPU time per second of audio, for 44.1 and 48 kHz stereo
//! AAC-LC of music-like content (a tone over pink noise) made by ffmpeg.
//!
//! `cargo bench -p outputs --bench aac_to_opus` (needs ffmpeg). CPU time is the thread's own,
//! from /proc/thread-self/schedstat (nanoseconds on the CPU), so other load on the machine does
//! not inflate it.

#![allow(clippy::print_stdout)]

#[path = "../tests/common/adts.rs"]
#[allow(dead_code)] // the tests' sine maker is not needed here
mod adts;

use std::process::Command;

use outputs::AacToOpus;

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat's first field")
}

fn main() {
    if !adts::have_ffmpeg() {
        return;
    }
    const SECONDS: u32 = 20;
    for rate in [44_100u32, 48_000] {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "anoisesrc=color=pink:amplitude=0.2:sample_rate={rate}:duration={SECONDS}"
            ))
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate={rate}:duration={SECONDS}"
            ))
            .args([
                "-filter_complex",
                "[0][1]amix=inputs=2,aformat=channel_layouts=stereo",
            ])
            .args(["-c:a", "aac", "-b:a", "128k", "-f", "adts", "-"])
            .output()
            .expect("run ffmpeg");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (track, frames) = adts::adts(&out.stdout);
        let audio_s = frames.len() as f64 * 1024.0 / f64::from(rate);
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut t = AacToOpus::new(&track).expect("AAC-LC");
            let start = thread_cpu_ns();
            let mut opus = 0;
            for f in &frames {
                opus += t.push(f).expect("valid AAC").len();
            }
            let cpu_ms = (thread_cpu_ns() - start) as f64 / 1e6;
            assert!(opus > 0);
            best = best.min(cpu_ms / audio_s);
        }
        println!(
            "aac_to_opus {rate} Hz stereo: {best:.2} ms CPU per second of audio \
             ({:.2}% of one core per stream)",
            best / 10.0
        );
    }
}
