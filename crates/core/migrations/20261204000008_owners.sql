-- A showdown has an owner, as a server has (server/owners.rs): the process running it,
-- by pid and start time, so two Kindlings never measure the same showdown at once and a
-- pid reused after a reboot is never taken for the owner. Runs get the start time too:
-- their liveness checked the pid alone.
ALTER TABLE showdowns ADD COLUMN owner_pid INTEGER;
ALTER TABLE showdowns ADD COLUMN owner_started INTEGER;
ALTER TABLE runs ADD COLUMN owner_started INTEGER;
