package com.mobilesdk.core;

import java.util.Arrays;

/**
 * Scoring of {@code mobile_sdk/golden.py}: both embeddings normalized in float64, score =
 * logit_scale * cosine; softmax over a row; ranking = indices by descending score, ties to the
 * lower index (numpy's stable argsort of -score).
 */
public final class Scoring {
    private Scoring() {
    }

    /** a / ||a|| in float64. A zero vector stays zero (its scores are 0, not NaN). */
    public static double[] normalize(double[] a) {
        double ss = 0;
        for (double v : a) {
            ss += v * v;
        }
        double norm = Math.sqrt(ss);
        double[] out = new double[a.length];
        if (norm == 0) {
            return out;
        }
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] / norm;
        }
        return out;
    }

    public static double[] toDouble(float[] a) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i];
        }
        return out;
    }

    /** logit_scale * cosine(a, b). */
    public static double score(double[] a, double[] b, double logitScale) {
        if (a.length != b.length) {
            throw new SdkException(SdkException.Kind.INVALID_ARGUMENT,
                    "embeddings differ in size: " + a.length + " vs " + b.length);
        }
        double[] x = normalize(a), y = normalize(b);
        double dot = 0;
        for (int i = 0; i < x.length; i++) {
            dot += x[i] * y[i];
        }
        return logitScale * dot;
    }

    /** (rows, cols) = logit_scale * cosine of every row of {@code a} with every row of {@code b}. */
    public static double[][] scores(double[][] a, double[][] b, double logitScale) {
        double[][] na = new double[a.length][], nb = new double[b.length][];
        for (int i = 0; i < a.length; i++) {
            na[i] = normalize(a[i]);
        }
        for (int j = 0; j < b.length; j++) {
            nb[j] = normalize(b[j]);
        }
        double[][] out = new double[a.length][b.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < b.length; j++) {
                if (na[i].length != nb[j].length) {
                    throw new SdkException(SdkException.Kind.INVALID_ARGUMENT,
                            "embeddings differ in size: " + na[i].length + " vs " + nb[j].length);
                }
                double dot = 0;
                for (int k = 0; k < na[i].length; k++) {
                    dot += na[i][k] * nb[j][k];
                }
                out[i][j] = logitScale * dot;
            }
        }
        return out;
    }

    /** Softmax of one row, in float64 (max subtracted first). */
    public static double[] softmax(double[] row) {
        if (row.length == 0) {
            return new double[0];
        }
        double max = Double.NEGATIVE_INFINITY;
        for (double v : row) {
            max = Math.max(max, v);
        }
        double[] e = new double[row.length];
        double sum = 0;
        for (int i = 0; i < row.length; i++) {
            e[i] = Math.exp(row[i] - max);
            sum += e[i];
        }
        for (int i = 0; i < row.length; i++) {
            e[i] /= sum;
        }
        return e;
    }

    /** Indices by descending score; equal scores keep the lower index first; NaN goes last. */
    public static int[] ranking(double[] row) {
        Integer[] idx = new Integer[row.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, (p, q) -> {  // a stable merge sort: ties keep index order
            double a = row[p], b = row[q];
            boolean an = Double.isNaN(a), bn = Double.isNaN(b);
            if (an || bn) {
                return an == bn ? 0 : (an ? 1 : -1);
            }
            return a > b ? -1 : (a < b ? 1 : 0); // -0.0 == 0.0, as in numpy
        });
        int[] out = new int[idx.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = idx[i];
        }
        return out;
    }
}
