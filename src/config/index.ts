/**
 * lvs.cf: Piranha's configuration file, read into one typed model, written back with its
 * comments, and mapped to the Director (docs/lvs.cf.md).
 */
export { lex, tokenizeLine, type LexLine, type LexResult, type Token } from './lexer.js';
export { parseConfig, readConfig, readConfigSync, resolveConfig, type HostLookup, type ParseOptions, type ParseResult } from './parse.js';
export { formatConfig, type FormatOptions } from './format.js';
export { writeConfig, writeConfigSync, writeConfigText, type WriteOptions, type WriteResult } from './write.js';
export { directorConfig, applyRunningState, markRules, type ApplyOptions, type DirectorOptions, type RealLike, type ServiceLike } from './director.js';
export { validateModel, type ValidateOptions, type ValidationResult } from './validate.js';
export { parseServices, systemServiceNames, GLOBAL_KEYS, VIRTUAL_KEYS, SERVER_KEYS, type KeySpec, type Scope, type ServiceNames } from './keys.js';
export {
  LvsConfigError,
  baseDevice,
  checkPort,
  cloneConfig,
  defaultGlobals,
  defaultServer,
  defaultVirtual,
  directorPort,
  emptyConfig,
  hostAddress,
  realMethod,
  withoutLayout,
  type BlockLayout,
  type ConfigMessage,
  type FailoverService,
  type FileLayout,
  type FwmarkRule,
  type Globals,
  type Host,
  type KeyLayout,
  type LoadMonitor,
  type LvsConfig,
  type NatRouterSetting,
  type RealServer,
  type VirtualServer,
} from './model.js';
