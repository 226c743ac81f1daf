// Creates a PGlite data folder (runs initdb) in a child process: initdb leaves about 500 MB
// behind in the process that ran it, which must not be the long-running one.
import { PGlite } from '@electric-sql/pglite'

const db = await PGlite.create(process.argv[2])
await db.close()
