-- "Find the best model for this Mac": a showdown is one persistent job over a few
-- candidate models. Each entry is downloaded (when not on disk), measured with the
-- quality suite, and its state kept here, so the job resumes where it stopped after a
-- crash, a quit or a reboot.
CREATE TABLE showdowns (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled')),
    goal TEXT NOT NULL,
    quick INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);

CREATE TABLE showdown_entries (
    id INTEGER PRIMARY KEY,
    showdown_id INTEGER NOT NULL REFERENCES showdowns(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    label TEXT NOT NULL,
    catalog_id TEXT,
    model_path TEXT,
    think INTEGER,
    status TEXT NOT NULL CHECK (status IN ('pending', 'downloading', 'measuring', 'done', 'failed')),
    run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    error TEXT,
    UNIQUE (showdown_id, position)
);
CREATE INDEX showdown_entries_showdown ON showdown_entries(showdown_id);
