/**
 * The API's configuration as Nest injects it. The type and its reader live in @switchyard/config, beside every
 * other process's flags: the launcher reads the same table.
 */
export type { ApiConfig } from '@switchyard/config';

export const API_CONFIG = Symbol('API_CONFIG');
