-- Runs imported from another machine are kept apart: they are shown, never used to
-- calibrate this machine's predictions. Until now an import was known only by its log note.
ALTER TABLE runs ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET imported = 1 WHERE log_tail LIKE 'imported %';
