// Kept apart from embedded.ts so that reading the default does not load the engine's module.
/** The embedded database's default data directory, relative to the working directory. */
export const DEFAULT_DATA_DIR = '.digest-doctor/db';
