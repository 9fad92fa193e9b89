/**
 * RFC 4180 CSV: comma-separated, fields optionally in double quotes (`""` is a quote inside one, and a quoted field
 * may hold commas and line breaks), LF or CRLF line ends, an optional UTF-8 BOM. Each record keeps the line it
 * starts on, so a message can name it. Blank lines are skipped.
 */
export interface CsvRecord {
  /** 1-based line of the file where the record starts. */
  line: number;
  fields: string[];
}

export class CsvSyntaxError extends Error {
  override readonly name = 'CsvSyntaxError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export function parseCsv(text: string): CsvRecord[] {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let start = 1;
  let quoted = false; // inside a quoted field
  let wasQuoted = false; // the current field was quoted (only a separator or line end may follow the closing quote)
  let i = 0;
  const endRecord = () => {
    fields.push(field);
    // A line holding nothing at all is skipped; a line of separators is a record of empty fields.
    if (!(fields.length === 1 && fields[0] === '' && !wasQuoted)) records.push({ line: start, fields });
    fields = [];
    field = '';
    wasQuoted = false;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (field !== '' || wasQuoted)
        throw new CsvSyntaxError(
          'a quote inside an unquoted field (quote the whole field and double the quote: "")',
          line,
        );
      quoted = true;
      wasQuoted = true;
      i++;
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      wasQuoted = false;
      i++;
      continue;
    }
    if (c === '\r' && src[i + 1] === '\n') i++;
    if (c === '\n' || c === '\r') {
      endRecord();
      line++;
      start = line;
      i++;
      continue;
    }
    if (wasQuoted)
      throw new CsvSyntaxError('text after a closing quote (only a comma or a line end may follow it)', line);
    field += c;
    i++;
  }
  if (quoted) throw new CsvSyntaxError('a quoted field is never closed', start);
  if (field !== '' || fields.length > 0 || wasQuoted) endRecord();
  return records;
}
