-- A quality test that needs more context than fits this machine is recorded as `skipped`
-- (shown, never scored). SQLite cannot change a CHECK in place: the table is rebuilt with
-- every row kept.
CREATE TABLE quality_results_new (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    test_id TEXT NOT NULL,
    category TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('answered', 'degenerate', 'timeout', 'crash', 'error', 'skipped')),
    answer_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, test_id)
);
INSERT INTO quality_results_new (id, run_id, test_id, category, outcome, answer_json, created_at)
    SELECT id, run_id, test_id, category, outcome, answer_json, created_at FROM quality_results;
DROP TABLE quality_results;
ALTER TABLE quality_results_new RENAME TO quality_results;
