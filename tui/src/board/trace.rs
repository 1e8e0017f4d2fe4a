//! `PM_BOARD_TRACE=FILE`: the board's start-up milestones, one line each with the milliseconds
//! since the board started, appended to FILE (scripts/bench-board.py splits its start-up time
//! with them). Off, it costs one branch per milestone.
use std::io::Write;
use std::time::Instant;

pub struct Trace {
    file: Option<std::fs::File>,
    started: Instant,
}

impl Trace {
    /// From `$PM_BOARD_TRACE`; a file that cannot be opened means no trace (the board works
    /// without one).
    pub fn from_env() -> Trace {
        let file = std::env::var_os("PM_BOARD_TRACE").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        Trace {
            file,
            started: Instant::now(),
        }
    }

    pub fn on(&self) -> bool {
        self.file.is_some()
    }

    pub fn mark(&mut self, what: &str) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{ms:.1} {what}");
        }
    }
}
