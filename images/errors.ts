/**
 * The one error type of the image component. `code` says what is wrong, `file` which image file
 * (a name inside the checkpoint directory), and the message says both in words, so that an operator
 * reading a failed Restore's condition knows which file to look at.
 */

export type ImageErrorCode =
  | 'EMAGIC' // a file does not start with the magics of its image type
  | 'ETRUNC' // a file ends inside an entry (or inside its magics)
  | 'EBOUNDS' // page runs / VMAs do not fit each other or the pages file
  | 'ECHECKSUM' // a file is missing, or its size or sha256 differs from the manifest
  | 'EMISSING' // the manifest is missing (incomplete checkpoint), or does not list a required image
  | 'EVERSION' // a format version this code does not read
  | 'ETOOBIG' // a size or a count over one of the caps (hostile or corrupt input)
  | 'EDECODE' // protobuf or JSON that does not decode, or decodes to values that make no sense
  | 'EINVAL'; // writeCheckpoint was given a task it cannot represent faithfully

export class ImageError extends Error {
  readonly code: ImageErrorCode;
  readonly file?: string;

  constructor(code: ImageErrorCode, file: string | undefined, message: string, options?: { cause?: unknown }) {
    super(file === undefined ? message : `${file}: ${message}`, options);
    this.name = 'ImageError';
    this.code = code;
    if (file !== undefined) this.file = file;
  }
}
