/**
 * The daemon's side of lvs.cf: read, resolve and map a file to a DirectorConfig, and save the
 * running state back into it (lvsadm --write-config), keeping everything the running state
 * does not describe (comments, health checks, names, inactive entries).
 */
import { applyRunningState, directorConfig, readConfigSync, resolveConfig, writeConfigSync, type ServiceLike } from '../config/index.js';
import type { ConfigMessage, LvsConfig } from '../config/model.js';
import type { DirectorConfig } from '../director/types.js';

/** A file read, resolved and mapped; throws the file's errors (all of them, in `errors`). */
export async function loadConfig(path: string, onWarning?: (w: ConfigMessage) => void): Promise<{ lvs: LvsConfig; director: DirectorConfig }> {
  const { config, warnings } = readConfigSync(path);
  for (const w of warnings) onWarning?.(w);
  const lvs = await resolveConfig(config, { file: path });
  return { lvs, director: directorConfig(lvs, { file: path }) };
}

/** The DirectorConfig of a file (lvsd --test-config). */
export async function loadDirectorConfig(path: string, onWarning?: (w: ConfigMessage) => void): Promise<DirectorConfig> {
  return (await loadConfig(path, onWarning)).director;
}

/** Write the running state into `target` (often the file it came from): serial_no bumped, atomically. */
export async function saveRunningConfig(source: string, target: string, services: ServiceLike[], running: DirectorConfig): Promise<{ file: string; serial: number }> {
  const { config } = readConfigSync(source);
  const resolved = await resolveConfig(config, { file: source });
  const updated = applyRunningState(resolved, services, { file: source, ...(running.timeouts ? { timeouts: running.timeouts } : {}), ...(running.marks ? { marks: running.marks } : {}) });
  const r = writeConfigSync(target, updated);
  return { file: r.file, serial: r.serial };
}
