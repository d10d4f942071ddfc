"""Correction data for the skin-dose engine, each number with its source.

``VERIFY`` lists the numbers shipped without reading the primary source here: they were transcribed from the
tables that PySkinDose 25.1.1 (MIT, github rvbCMTS/PySkinDose, ``table_data/correction_medium_and_backscatter.csv``
and ``corrections.py``) takes from the papers below.  A physicist should check them against the papers before the
estimates are used clinically; the method text says so.
"""

from __future__ import annotations

import numpy as np

BENMAKHLOUF_2011 = (
    "Benmakhlouf H, Bouchard H, Fransson A, Andreo P. Backscatter factors and mass energy-absorption coefficient "
    "ratios for diagnostic radiology dosimetry. Phys Med Biol 2011;56:7179-7204"
)
BENMAKHLOUF_2013 = (
    "Benmakhlouf H, Fransson A, Andreo P. Influence of phantom thickness and material on the backscatter factors "
    "for diagnostic x-ray beam dosimetry. Phys Med Biol 2013;58:247-260 (eq. 8)"
)
IEC_REFERENCE_POINT = (
    "IEC 60601-2-43: the patient entrance reference point lies 15 cm from the isocentre towards the source"
)
TABLE_TRANSMISSION_NOTE = (
    "table and pad transmission 0.8 unless measured for the unit (the value used by the PySkinDose reference run; "
    "PySkinDose's own measurements on a Siemens AXIOM-Artis table with pad give 0.60-0.75 over 50-110 kV, 0 mm Cu)"
)
UNCERTAINTY_PCT = 50
UNCERTAINTY_NOTE = (
    "±50 % (order of magnitude of the combined uncertainty of RDSR-based skin-dose estimates, 35-50 % being typical: "
    "Jones AK, Pasciak AS, J Appl Clin Med Phys 2011;12(4):3670 (verify); it is dominated by the table offsets, the "
    "patient's size and position on the table and the table/pad transmission)"
)

VERIFY: tuple[str, ...] = (
    "HVL and (μen/ρ)water/air table (Benmakhlouf et al. 2011, transcribed via PySkinDose 25.1.1)",
    "backscatter-factor fit coefficients (Benmakhlouf et al. 2013 eq. 8, transcribed via PySkinDose 25.1.1)",
    "table and pad transmission 0.8 (typical value, not measured for the unit)",
)

# Beam qualities of the tables: tube voltage (kV) x added copper (mm), at 3.1 mm Al inherent filtration.
KVP_GRID = np.array([50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 130.0, 140.0, 150.0])
CU_GRID = np.array([0.0, 0.1, 0.2, 0.3, 0.6, 0.9])
INHERENT_AL_MM = 3.1

# First half-value layer (mm Al) [kVp row][Cu column]; Benmakhlouf et al. 2011 (verify).
HVL_MM_AL = np.array([
    [1.99, 2.89, 3.49, 3.91, 4.70, 5.15],
    [2.37, 3.51, 4.28, 4.84, 5.90, 6.51],
    [2.73, 4.08, 4.99, 5.66, 6.94, 7.68],
    [3.12, 4.66, 5.71, 6.47, 7.88, 8.69],
    [3.53, 5.24, 6.38, 7.18, 8.66, 9.48],
    [3.95, 5.79, 6.97, 7.81, 9.30, 10.14],
    [4.37, 6.30, 7.51, 8.35, 9.85, 10.70],
    [4.79, 6.78, 8.01, 8.85, 10.34, 11.21],
    [5.21, 7.24, 8.46, 9.30, 10.79, 11.66],
    [5.62, 7.67, 8.89, 9.71, 11.20, 12.09],
    [6.04, 8.09, 9.29, 10.10, 11.58, 12.48],
])

# f-factor: ratio of mass energy-absorption coefficients water/air at the skin, 10 cm x 10 cm field (the field-size
# dependence is below 0.3 %); Benmakhlouf et al. 2011 (verify).
MUEN_WATER_AIR = np.array([
    [1.016, 1.015, 1.016, 1.016, 1.018, 1.019],
    [1.017, 1.018, 1.019, 1.021, 1.024, 1.026],
    [1.019, 1.021, 1.023, 1.026, 1.031, 1.034],
    [1.021, 1.025, 1.028, 1.031, 1.038, 1.042],
    [1.024, 1.029, 1.033, 1.037, 1.043, 1.048],
    [1.027, 1.033, 1.038, 1.041, 1.049, 1.053],
    [1.030, 1.037, 1.041, 1.045, 1.053, 1.058],
    [1.033, 1.040, 1.045, 1.049, 1.057, 1.062],
    [1.036, 1.043, 1.048, 1.052, 1.060, 1.065],
    [1.038, 1.046, 1.051, 1.055, 1.063, 1.068],
    [1.041, 1.049, 1.054, 1.058, 1.065, 1.071],
])

# Backscatter factor B(kVp, HVL) = sum of c[i] * kVp**j * HVL**k per field side; rows are the terms
# (1, kV, kV², HVL, kV·HVL, kV²·HVL, HVL², kV·HVL², kV²·HVL²), columns the square-field sides below.
# Benmakhlouf et al. 2013 eq. 8 (verify).
BSF_SIDES_CM = np.array([5.0, 10.0, 20.0, 25.0, 35.0])
BSF_COEFFICIENTS = np.array([
    [+1.00870e0, +9.29969e-1, +8.65442e-1, +8.58665e-1, +8.57065e-1],
    [+2.35816e-3, +4.08549e-3, +5.36739e-3, +5.51579e-3, +5.55933e-3],
    [-9.48937e-6, -1.66271e-5, -2.21494e-5, -2.27532e-5, -2.28004e-5],
    [+1.03143e-1, +1.53605e-1, +1.72418e-1, +1.70826e-1, +1.66418e-1],
    [-1.04881e-3, -1.45187e-3, -1.46088e-3, -1.38540e-3, -1.28180e-3],
    [+3.59731e-6, +5.05312e-6, +5.17430e-6, +4.91192e-6, +4.53036e-6],
    [-7.31303e-3, -9.32427e-3, -8.30138e-3, -7.64330e-3, -6.81574e-3],
    [+7.93272e-5, +9.40568e-5, +7.13576e-5, +6.13126e-5, +4.94197e-5],
    [-2.74296e-7, -3.28449e-7, -2.54885e-7, -2.21399e-7, -1.79074e-7],
])


def _bilinear(table: np.ndarray, kvp: np.ndarray, cu_mm: np.ndarray) -> np.ndarray:
    """Interpolate a (kVp x Cu) table, clamped to its edges (no extrapolation)."""
    kvp = np.clip(np.asarray(kvp, dtype=float), KVP_GRID[0], KVP_GRID[-1])
    cu = np.clip(np.asarray(cu_mm, dtype=float), CU_GRID[0], CU_GRID[-1])
    i = np.clip(np.searchsorted(KVP_GRID, kvp, side="right") - 1, 0, len(KVP_GRID) - 2)
    j = np.clip(np.searchsorted(CU_GRID, cu, side="right") - 1, 0, len(CU_GRID) - 2)
    wk = (kvp - KVP_GRID[i]) / (KVP_GRID[i + 1] - KVP_GRID[i])
    wc = (cu - CU_GRID[j]) / (CU_GRID[j + 1] - CU_GRID[j])
    return ((1 - wk) * (1 - wc) * table[i, j] + wk * (1 - wc) * table[i + 1, j]
            + (1 - wk) * wc * table[i, j + 1] + wk * wc * table[i + 1, j + 1])


def hvl_mm_al(kvp: np.ndarray, cu_mm: np.ndarray) -> np.ndarray:
    """First HVL (mm Al) for tube voltage and added copper, at 3.1 mm Al inherent filtration."""
    return _bilinear(HVL_MM_AL, kvp, cu_mm)


def f_factor(kvp: np.ndarray, cu_mm: np.ndarray) -> np.ndarray:
    """Air kerma to water (skin) dose: (μen/ρ)water/air for the beam quality."""
    return _bilinear(MUEN_WATER_AIR, kvp, cu_mm)


def backscatter_at_sides(kvp: np.ndarray, hvl: np.ndarray) -> np.ndarray:
    """Backscatter factors, shape (events, len(BSF_SIDES_CM)), from the eq. 8 fit."""
    kv = np.asarray(kvp, dtype=float)[:, None]
    h = np.asarray(hvl, dtype=float)[:, None]
    c = BSF_COEFFICIENTS
    return ((c[0] + c[1] * kv + c[2] * kv**2) + (c[3] + c[4] * kv + c[5] * kv**2) * h
            + (c[6] + c[7] * kv + c[8] * kv**2) * h**2)


def interpolate_sides(values_at_sides: np.ndarray, side_cm: np.ndarray) -> np.ndarray:
    """Per-event factors tabulated at BSF_SIDES_CM (events x 5), evaluated at field sides (events x cells);
    piecewise linear, clamped to 5-35 cm."""
    s = np.clip(side_cm, BSF_SIDES_CM[0], BSF_SIDES_CM[-1])
    k = np.clip(np.searchsorted(BSF_SIDES_CM, s, side="right") - 1, 0, len(BSF_SIDES_CM) - 2)
    lo = BSF_SIDES_CM[k]
    w = (s - lo) / (BSF_SIDES_CM[k + 1] - lo)
    rows = np.arange(values_at_sides.shape[0])[:, None]
    return (1 - w) * values_at_sides[rows, k] + w * values_at_sides[rows, k + 1]
