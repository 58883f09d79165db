-- Kindling history: machines, models, benchmark runs and their measurements.
-- Migrations are only ever added, never edited once landed.

CREATE TABLE hardware_snapshots (
    id INTEGER PRIMARY KEY,
    taken_at TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    bandwidth_bytes_per_second REAL
);

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    source TEXT NOT NULL DEFAULT 'local',
    name TEXT,
    architecture TEXT,
    quant TEXT,
    parameter_count INTEGER,
    gguf_json TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    model_id INTEGER REFERENCES models(id),
    hardware_id INTEGER REFERENCES hardware_snapshots(id),
    runtime_path TEXT,
    runtime_version TEXT,
    devices_json TEXT,
    server_args_json TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    owner_pid INTEGER,
    error_code TEXT,
    error_message TEXT,
    log_tail TEXT,
    summary_json TEXT
);
CREATE INDEX runs_started ON runs(started_at DESC);
CREATE INDEX runs_status ON runs(status);

CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    repetition INTEGER,
    value REAL NOT NULL,
    unit TEXT NOT NULL,
    detail_json TEXT
);
CREATE INDEX measurements_run ON measurements(run_id);
