/** The MinIO server the S3 tests run against: the bench's launcher (bench/minio-server.ts). */
export { startMinio, ensureMinio, type Minio } from '../../bench/minio-server';
