export { openDb, openPglite, openPostgres, type Db, type DbOptions, type Queryable, type Row } from './db.ts'
export { migrate } from './migrate.ts'
export * from './write.ts'
export * from './read.ts'
