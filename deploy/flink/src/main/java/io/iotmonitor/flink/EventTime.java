package io.iotmonitor.flink;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * iot_event_time(timestamp, ingest_header, record_ts, max_past_ms, max_future_ms): the event time of
 * a wire reading as the worker reads it (src/domain/wire.ts, parseTimestamp and validateWire).
 *
 * <ul>
 *   <li>ISO 8601 with 'T' or a space, seconds and fraction optional ('.' or ','), a zone 'Z', '+hh',
 *       '+hhmm' or '+hh:mm', or none: then UTC (the original producer's naive
 *       datetime.now().isoformat(), microseconds included). Digits below a microsecond are cut.</li>
 *   <li>Far off: more than max_past_ms behind or max_future_ms ahead of the ingest clock (the
 *       'iot-ingest-ms' header when the producer sent one, else the record timestamp); -1 turns a
 *       check off.</li>
 * </ul>
 *
 * Flink's time attribute holds milliseconds (TIMESTAMP_LTZ(3)), so the microseconds are cut here
 * (floor): a minute boundary is a whole millisecond, so no reading changes window. A reading the
 * worker would reject gets the epoch (1970-01-01): it never raises a watermark, and the job's view
 * of valid readings leaves it out.
 */
public final class EventTime extends ScalarFunction {
  private static final Pattern ISO = Pattern.compile(
      "^(\\d{4})-(\\d{2})-(\\d{2})[T ](\\d{2}):(\\d{2})(?::(\\d{2})(?:[.,](\\d{1,9}))?)?\\s*(Z|z|[+-]\\d{2}(?::?\\d{2})?)?$");
  private static final Instant INVALID = Instant.EPOCH;

  public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(
      String text, byte[] ingestHeader, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant recordTs, Long maxPastMs, Long maxFutureMs) {
    if (text == null) return INVALID;
    long us = parseMicros(text);
    if (us == Long.MIN_VALUE) return INVALID;
    long ms = Math.floorDiv(us, 1000L);
    long now = ingestClock(ingestHeader, recordTs);
    if (now != Long.MIN_VALUE) {
      // validateWire compares the µs time (a double of ms) with the clock in whole ms.
      if (maxPastMs != null && maxPastMs >= 0 && us < (now - maxPastMs) * 1000L) return INVALID;
      if (maxFutureMs != null && maxFutureMs >= 0 && us > (now + maxFutureMs) * 1000L) return INVALID;
    }
    if (ms == 0L) ms = 1L; // the epoch itself marks invalid readings; a real one there is 1 ms off
    return Instant.ofEpochMilli(ms);
  }

  /** The header's decimal value (the worker's headerNumber), else the record timestamp, else MIN_VALUE. */
  static long ingestClock(byte[] header, Instant recordTs) {
    if (header != null && header.length > 0 && header.length <= 18) {
      long v = 0;
      boolean ok = true;
      int i = 0;
      boolean neg = header[0] == '-';
      if (neg) i = 1;
      if (i >= header.length) ok = false;
      for (; i < header.length && ok; i++) {
        int d = header[i] - '0';
        if (d < 0 || d > 9) ok = false;
        else v = v * 10 + d;
      }
      if (ok) return neg ? -v : v;
    }
    return recordTs == null ? Long.MIN_VALUE : recordTs.toEpochMilli();
  }

  /** Epoch microseconds of an ISO 8601 text as parseTimestamp reads it, or Long.MIN_VALUE. */
  static long parseMicros(String text) {
    Matcher m = ISO.matcher(text);
    if (!m.matches()) return Long.MIN_VALUE;
    int year = Integer.parseInt(m.group(1));
    int month = Integer.parseInt(m.group(2));
    int day = Integer.parseInt(m.group(3));
    int hour = Integer.parseInt(m.group(4));
    int minute = Integer.parseInt(m.group(5));
    int second = m.group(6) == null ? 0 : Integer.parseInt(m.group(6));
    if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return Long.MIN_VALUE;
    String frac = m.group(7);
    long micros = 0;
    if (frac != null) {
      String six = frac.length() >= 6 ? frac.substring(0, 6) : (frac + "000000").substring(0, 6);
      micros = Long.parseLong(six);
    }
    long days;
    try {
      days = LocalDate.of(year, month, day).toEpochDay();
    } catch (DateTimeException e) {
      return Long.MIN_VALUE; // 2025-02-30 and the like
    }
    long secs = ((days * 24 + hour) * 60 + minute) * 60 + second;
    String zone = m.group(8);
    if (zone != null && !zone.equals("Z") && !zone.equals("z")) {
      int sign = zone.charAt(0) == '-' ? -1 : 1;
      String digits = zone.substring(1).replace(":", "");
      int offH = Integer.parseInt(digits.substring(0, 2));
      int offM = digits.length() > 2 ? Integer.parseInt(digits.substring(2, 4)) : 0;
      if (offH > 23 || offM > 59) return Long.MIN_VALUE;
      secs -= sign * (offH * 60L + offM) * 60L;
    }
    return secs * 1_000_000L + micros;
  }
}
