-- An imported run keeps the document's own description of itself (its model, the
-- machine it ran on), so a result from another Mac is shown with what it was measured on.
ALTER TABLE runs ADD COLUMN origin_json TEXT;
