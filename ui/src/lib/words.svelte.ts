// What this machine is called on screen: "Mac" on a Mac, "computer" elsewhere. The word
// comes from the Rust side (kindling_core::words), the one place that knows the platform;
// App.svelte loads it once at start.
import { api } from "./api";

export const words = $state({ machine: "Mac" });

export async function loadWords(): Promise<void> {
  words.machine = (await api.appInfo()).machine;
}
