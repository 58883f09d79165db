-- Download jobs, so a partial file can be resumed after a restart and an abandoned one
-- can be found by cleanup.
CREATE TABLE downloads (
    id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    file TEXT NOT NULL,
    url TEXT NOT NULL,
    dest TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'failed', 'cancelled')),
    error_code TEXT,
    error_message TEXT,
    owner_pid INTEGER,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
