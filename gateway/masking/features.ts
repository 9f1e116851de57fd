/**
 * One cheap pass over a string that tells which detectors can possibly match, so most short
 * JSON values ("active", "Jane Doe", "2024-01-02") cost a loop of a few characters instead of
 * twenty regex runs.
 */
export interface TextFeatures {
  digits: number;
  /** Longest run of [A-Za-z0-9_-]: every token-shaped credential needs 16 or more. */
  longestTokenRun: number;
  at: boolean;
  colon: boolean;
  colons: number;
  equals: boolean;
  dot: boolean;
  plus: boolean;
  dash: boolean;
  /** Longest run of base64/base64url/hex characters ([A-Za-z0-9+/_-]): encoded secrets need 16. */
  longestEncodedRun: number;
  percent: boolean;
}

export function textFeatures(text: string): TextFeatures {
  let digits = 0;
  let run = 0;
  let longestTokenRun = 0;
  let at = false;
  let colon = false;
  let colons = 0;
  let equals = false;
  let dot = false;
  let plus = false;
  let dash = false;
  let encRun = 0;
  let longestEncodedRun = 0;
  let percent = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45 || c === 43 || c === 47) encRun++;
    else {
      if (encRun > longestEncodedRun) longestEncodedRun = encRun;
      encRun = 0;
      if (c === 37) percent = true;
    }
    if (c >= 48 && c <= 57) {
      digits++;
      run++;
    } else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) {
      run++;
    } else {
      if (c === 45) {
        dash = true;
        run++;
        continue;
      }
      if (run > longestTokenRun) longestTokenRun = run;
      run = 0;
      if (c === 64) at = true;
      else if (c === 58) {
        colon = true;
        colons++;
      }
      else if (c === 61) equals = true;
      else if (c === 46) dot = true;
      else if (c === 43) plus = true;
    }
  }
  if (run > longestTokenRun) longestTokenRun = run;
  if (encRun > longestEncodedRun) longestEncodedRun = encRun;
  return { digits, longestTokenRun, at, colon, colons, equals, dot, plus, dash, longestEncodedRun, percent };
}
