// Graft's IndexedDB storage: the one "graft" database (schema.ts), opened through openGraftDb (open.ts), which
// first moves the data of the legacy databases into it (legacy.ts); workbench.ts is the typed access to the
// workbench stores. It imports nothing from hub/, train/ or worker/, which build their stores on it.
export { GRAFT_DB_NAME, GRAFT_DB_VERSION, UPGRADES, type GraftDb, type GraftSchema, type GraftStoreName, type UpgradeStep } from './schema';
export type { CheckpointRow, DatasetEditsRow, DatasetRow, LegacyImportMarker, MatmulPlanRow, ModelFileRow, ModelRow } from './schema';
export { GraftDbConnection, openGraftDb, type OpenGraftDbOptions } from './open';
export { importLegacyDatabases, LEGACY_DATABASES, legacyMarkerKey, type LegacyImportOptions } from './legacy';
export { openWorkbench, type Workbench, type WorkbenchKey, type WorkbenchRows, type WorkbenchStore } from './workbench';
