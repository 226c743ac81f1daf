// Entry of the training thread. Node 20 cannot give a worker thread ESM loaders through execArgv
// (nodejs/node#47747), so the thread registers tsx itself before loading the TypeScript module.
import { register } from 'tsx/esm/api'

register()
await import('./trainer-thread.ts')
