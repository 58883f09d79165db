-- Quality runs: raw answers first (never edited), scores derived from them (replaced on
-- rescore, with the grader version that produced them).
ALTER TABLE runs ADD COLUMN config_json TEXT;

CREATE TABLE quality_results (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    test_id TEXT NOT NULL,
    category TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('answered', 'degenerate', 'timeout', 'crash', 'error')),
    answer_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, test_id)
);

CREATE TABLE quality_scores (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    test_id TEXT NOT NULL,
    score REAL NOT NULL,
    detail TEXT,
    grader_version INTEGER NOT NULL,
    graded_at TEXT NOT NULL,
    UNIQUE (run_id, test_id)
);
