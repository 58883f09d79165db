-- First use of a GPU for a model architecture: a short known prompt with GPU layers,
-- watched for a degenerate stream or a crash. One verdict per runtime build, model
-- architecture and device: asked once, kept.
CREATE TABLE gpu_checks (
    runtime TEXT NOT NULL,
    architecture TEXT NOT NULL,
    device TEXT NOT NULL,
    usable INTEGER NOT NULL CHECK (usable IN (0, 1)),
    reason TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    PRIMARY KEY (runtime, architecture, device)
);
