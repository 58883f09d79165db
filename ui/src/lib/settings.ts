import type { SettingsChange } from "./bindings/SettingsChange";

/** A change that leaves every setting as it is; each save names what it changes. */
export const UNCHANGED: SettingsChange = {
  port: null,
  goal: null,
  server_model: null,
  cors_origin: null,
  sleep_after_minutes: null,
  second_port: null,
  end_bad_answers: null,
  tie_minutes: null,
  lend_on_battery: null,
  lend_lid_open_only: null,
  lend_memory_bytes: null,
  lend_gpu: null,
};
