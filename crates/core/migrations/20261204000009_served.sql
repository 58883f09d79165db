-- What the front door served (front/): requests, tokens and time to first token per
-- model per local day, and the answers that went wrong. No content is stored: the
-- evidence of a bad answer stays in memory until the owner saves it.
CREATE TABLE served_usage (
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    first_piece_ms_total REAL NOT NULL DEFAULT 0,
    first_piece_count INTEGER NOT NULL DEFAULT 0,
    went_wrong INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model)
);

CREATE TABLE served_faults (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    at TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_bytes INTEGER NOT NULL,
    runtime_build TEXT NOT NULL,
    ended INTEGER NOT NULL
);
CREATE INDEX served_faults_day ON served_faults (day);
