-- A tie at the top of a quick showdown is settled on the full suite: each of the two
-- candidates answers the rest of it in a run of its own (`full_run_id`), carrying its quick
-- run's answers, so a stopped night resumes the settling where it was. `tie_json` keeps
-- what became of the tie (measured, the same file's bytes, too long for the night).
ALTER TABLE showdown_entries ADD COLUMN full_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL;
ALTER TABLE showdowns ADD COLUMN tie_json TEXT;
