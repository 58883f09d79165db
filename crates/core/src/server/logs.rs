//! The server's recent log lines, and what they say about why it stopped.
//! Classification is a pure function of the exit status and the log tail.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How many lines of server output are kept for "what went wrong".
pub const LOG_TAIL_LINES: usize = 200;

/// A bounded buffer of the latest log lines.
#[derive(Debug, Clone)]
pub struct LogTail {
    lines: VecDeque<String>,
    cap: usize,
}

impl LogTail {
    pub fn new(cap: usize) -> Self {
        LogTail {
            lines: VecDeque::with_capacity(cap.min(1024)),
            cap: cap.max(1),
        }
    }
    pub fn push(&mut self, line: String) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// How the process ended, as the OS reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(s: std::process::ExitStatus) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = s.signal() {
                return ExitStatus::Signal(sig);
            }
        }
        s.code().map_or(ExitStatus::Unknown, ExitStatus::Code)
    }
}

/// Why the server stopped when nobody asked it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitCause {
    PortInUse,
    ModelLoadFailed { detail: String },
    OutOfMemory { detail: String },
    Crashed { signal: i32 },
    Exited { code: i32, detail: String },
}

const OOM_MARKERS: &[&str] = &[
    "out of memory",
    "ErrorOutOfDeviceMemory",
    "std::bad_alloc",
    "failed to allocate",
    "unable to allocate",
];

/// Reads the exit status and the last log lines to say why the server stopped.
pub fn classify_exit(status: ExitStatus, log: &[String]) -> ExitCause {
    let find = |needles: &[&str]| {
        log.iter()
            .rev()
            .find(|l| needles.iter().any(|n| l.contains(n)))
            .map(|l| strip_log_prefix(l).to_string())
    };
    if log
        .iter()
        .any(|l| l.contains("couldn't bind HTTP server socket"))
    {
        return ExitCause::PortInUse;
    }
    if let Some(detail) = find(OOM_MARKERS) {
        return ExitCause::OutOfMemory { detail };
    }
    if log.iter().any(|l| {
        l.contains("exiting due to model loading error") || l.contains("failed to load model")
    }) {
        let detail = find(&["error loading model:"])
            .or_else(|| find(&["failed to load model"]))
            .unwrap_or_default();
        return ExitCause::ModelLoadFailed { detail };
    }
    match status {
        ExitStatus::Signal(signal) => ExitCause::Crashed { signal },
        ExitStatus::Code(code) => ExitCause::Exited {
            code,
            detail: find(&[" E "]).unwrap_or_else(|| {
                log.last()
                    .map(|l| strip_log_prefix(l).to_string())
                    .unwrap_or_default()
            }),
        },
        ExitStatus::Unknown => ExitCause::Exited {
            code: -1,
            detail: String::new(),
        },
    }
}

/// `0.00.070.905 E llama_model_load: error ...` → `llama_model_load: error ...`.
pub fn strip_log_prefix(line: &str) -> &str {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(ts), Some(level), Some(rest))
            if ts.chars().all(|c| c.is_ascii_digit() || c == '.') && level.len() == 1 =>
        {
            rest.trim()
        }
        _ => line.trim(),
    }
}

/// The line llama-server logs when it is listening (readiness is still `/health`).
pub fn is_listening_line(line: &str) -> bool {
    line.contains("listening on http") || line.contains("server is listening")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn busy_port() {
        let l = log(&["0.00.004.737 E srv         start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 18081", "0.00.004.805 E srv  llama_server: exiting due to HTTP server error"]);
        assert_eq!(classify_exit(ExitStatus::Code(1), &l), ExitCause::PortInUse);
    }

    #[test]
    fn not_a_model() {
        let l = log(&[
            "0.00.004.659 E llama_model_load: error loading model: llama_model_loader: failed to load model from /tmp/fake.gguf",
            "0.00.004.664 E srv    load_model: failed to load model, '/tmp/fake.gguf'",
            "0.00.005.160 E srv  llama_server: exiting due to model loading error",
        ]);
        match classify_exit(ExitStatus::Code(1), &l) {
            ExitCause::ModelLoadFailed { detail } => {
                assert!(
                    detail.starts_with("llama_model_load: error loading model"),
                    "{detail}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn out_of_device_memory() {
        let l = log(&[
            "ggml_vulkan: Device memory allocation of size 4294967296 failed.",
            "ggml_vulkan: vk::Device::allocateMemory: ErrorOutOfDeviceMemory",
        ]);
        assert!(matches!(
            classify_exit(ExitStatus::Signal(6), &l),
            ExitCause::OutOfMemory { .. }
        ));
    }

    #[test]
    fn killed_by_signal() {
        let l = log(&["0.04.553.510 I slot      release: id  3 | task 0 | stop processing"]);
        assert_eq!(
            classify_exit(ExitStatus::Signal(9), &l),
            ExitCause::Crashed { signal: 9 }
        );
    }

    #[test]
    fn plain_exit_keeps_the_last_error_line() {
        let l = log(&[
            "0.1 I all good",
            "0.2 E something broke",
            "0.3 I cleaning up",
        ]);
        assert_eq!(
            classify_exit(ExitStatus::Code(3), &l),
            ExitCause::Exited {
                code: 3,
                detail: "something broke".into()
            }
        );
    }

    #[test]
    fn tail_is_bounded() {
        let mut t = LogTail::new(3);
        for i in 0..10 {
            t.push(i.to_string());
        }
        assert_eq!(t.lines(), ["7", "8", "9"]);
    }

    #[test]
    fn prefix_stripping() {
        assert_eq!(
            strip_log_prefix("0.00.070.905 E llama_model_load: x"),
            "llama_model_load: x"
        );
        assert_eq!(strip_log_prefix("plain line"), "plain line");
        assert!(is_listening_line(
            "0.01.337.001 I srv  llama_server: listening on http://127.0.0.1:18080"
        ));
    }
}
