"""Concept codes of the dose templates (TID 10001-10015, 10021-10024, 10030) as (scheme, value) keys.

Matching is always by (coding scheme, code value), never by code meaning.  SNOMED RT codes (schemes ``SRT``,
``SNM3``, ``99SDM``) are mapped to SNOMED CT (``SCT``) with the PS3.16 equivalents (PS3.16 Annex O / the SNOMED
mapping table; see shared/reference/rdsr-codes.md §2.10), so a file sending either form matches the same constant.
A small alias table maps known vendor mistakes (rdsr-codes.md §1.2) to the intended code.
"""

from __future__ import annotations

Key = tuple[str, str]

SNOMED_RT_SCHEMES = frozenset({"SRT", "SNM3", "99SDM"})

# Radionuclides and radiopharmaceuticals (the agent of an RRDSR, TID 10022): SNOMED RT -> SNOMED CT for every SNOMED
# member of PS3.16 CID 18 (Radiopharmaceutical Isotope), CID 4020 (PET Radionuclide), CID 25 (Radiopharmaceutical) and
# CID 4021 (PET Radiopharmaceutical), 202 pairs.  Source: the CID tables' "SNOMED-RT ID" column, as rendered in the
# FHIR ConceptMap of github.com/bvdh/dicom-terminology-in-fhir, commit b06be68fccf839729e5df67c3dca565331c6b729,
# input/resources/ConceptMap-SCT2SRT.json; members: input/resources/ValueSet-dicom-cid-{18,25,4020,4021}-*.json at that
# commit (CID 18 and 25 version 20201116, 4020 20160119, 4021 20250709) and input/fsh/ValueSet-dicom-cid-*.fsh at
# commit 9f098270ff7180e43a8df1a2eef0130b72231d5b (CID 18, 25 and 4021 version 20251111).  Cross-checked pair by pair: all 202 agree with pydicom
# 3.0.2 pydicom/sr/_snomed_dict.py (generated from PS3.16) and with the same repository's name-matched ConceptMap
# (commit 8d042e69377df086d30039b0b19ec686ccbe8162, input/fsh/ConceptMap-srt-sct-concept-map.fsh); the SRT codes of
# CID 4020 and CID 4021 in PS3.16-2019a (DCMTK dcmsr/libcmr/cid4020.cc, cid4021.cc, commit 0712fc5d) name the same
# agents.  Four SRT codes of CID 4021 in 2019a have no SCT equivalent in the standard and are left unmapped rather than
# guessed: C-B1034 Fluoro-L-dopa F^18^ (the standard now pairs C-E0241 with it), C-B1046 Germanium Ge^68^, C-B1047
# Sodium Na^22^ and C-B07E6 Monoclonal antibody I^124^.  Comments: code meaning (CIDs listing the SCT code).
RADIOPHARMACEUTICAL_SRT_TO_SCT: dict[str, str] = {
    # radionuclides (CID 18, CID 4020)
    "C-115A2": "2705002",  # ^72^Arsenic (CID 4020)
    "C-122A5": "3027009",  # ^133^Barium (CID 18)
    "C-113A1": "17910003",  # ^75^Bromine (CID 4020)
    "C-113A2": "79523006",  # ^76^Bromine (CID 4020)
    "C-113A3": "86521004",  # ^77^Bromine (CID 4020)
    "C-105A1": "40565003",  # ^11^Carbon (CID 4020)
    "C-105A2": "71647005",  # ^14^Carbon (CID 18)
    "C-129A2": "52745005",  # ^51^Chromium (CID 18)
    "C-144A3": "27054007",  # ^57^Cobalt (CID 18)
    "C-144A4": "89272005",  # ^58^Cobalt (CID 18)
    "C-144A6": "5405008",  # ^60^Cobalt (CID 18)
    "C-127A4": "425364008",  # ^60^Copper (CID 4020)
    "C-127A1": "71425003",  # ^61^Copper (CID 4020)
    "C-127A5": "422934004",  # ^62^Copper (CID 4020)
    "C-127A2": "3932008",  # ^64^Copper (CID 18, 4020)
    "C-127A3": "53700003",  # ^67^Copper (CID 18)
    "C-111A1": "77004003",  # ^18^Fluorine (CID 18, 4020)
    "C-178A8": "14529005",  # ^153^Gadolinium (CID 18)
    "C-131A1": "79477007",  # ^66^Gallium (CID 4020)
    "C-131A2": "2008008",  # ^67^Gallium (CID 18)
    "C-131A3": "35337001",  # ^68^Gallium (CID 4020)
    "C-128A2": "53315004",  # ^68^Germanium / Germanium Ge^68^ (CID 4020, 4021)
    "C-146A9": "24301009",  # ^198^Gold (CID 18)
    "C-146B1": "70544003",  # ^199^Gold (CID 18)
    "C-145A4": "56609000",  # ^111^Indium (CID 18)
    "C-145A5": "48895003",  # ^113m^Indium (CID 18)
    "C-114A4": "21572004",  # ^123^Iodine (CID 18)
    "C-114A5": "40937006",  # ^124^Iodine (CID 4020)
    "C-114A6": "68630002",  # ^125^Iodine (CID 18)
    "C-114B1": "1368003",  # ^131^Iodine (CID 18)
    "C-130A1": "69089000",  # ^52^Iron (CID 4020)
    "C-130A3": "68580003",  # ^59^Iron (CID 18)
    "C-173A5": "61716009",  # ^81m^Krypton / Krypton^81m (CID 18, 25)
    "C-173A7": "34127007",  # ^85^Krypton (CID 18)
    "C-132A8": "47588004",  # ^203^Lead (CID 18)
    "C-101ED": "447553000",  # ^177^Lutetium (CID 18)
    "C-149A1": "37225000",  # ^52^Manganese (CID 4020)
    "C-107A1": "21576001",  # ^13^Nitrogen (CID 4020)
    "C-1018C": "424875009",  # ^14^Oxygen (CID 4020)
    "C-B1038": "129504001",  # ^15^Oxygen / Oxygen O^15^ (CID 4020, 4021)
    "C-106A1": "32505007",  # ^32^Phosphorus (CID 18)
    "C-135A4": "423764008",  # ^38^Potassium (CID 4020)
    "C-135A2": "59844004",  # ^42^Potassium (CID 18)
    "C-135A3": "8202008",  # ^43^Potassium (CID 18)
    "C-136A2": "24853006",  # ^223^Radium (CID 18)
    "C-11906": "395865006",  # ^186^Rhenium (CID 18)
    "C-1018D": "423578007",  # ^188^Rhenium (CID 18)
    "C-159A2": "79197006",  # ^82^Rubidium (CID 4020)
    "C-180A2": "23788009",  # ^97^Ruthenium (CID 18)
    "C-B1134": "419804008",  # ^153^Samarium (CID 18)
    "C-116A2": "87437000",  # ^73^Selenium (CID 4020)
    "C-116A3": "43239002",  # ^75^Selenium (CID 18)
    "C-155A1": "71633006",  # ^22^Sodium / Sodium Na^22^ (CID 18, 4020, 4021)
    "C-155A2": "58541008",  # ^24^Sodium (CID 18)
    "C-158A3": "111084009",  # ^85^Strontium (CID 18)
    "C-158A5": "78023008",  # ^87m^Strontium (CID 18)
    "C-158A6": "7770004",  # ^89^Strontium (CID 18)
    "C-156A6": "6301006",  # ^178^Tantalum (CID 18)
    "C-163AA": "424079002",  # ^94m^Technetium (CID 4020)
    "C-163A8": "72454006",  # ^99m^Technetium (CID 18)
    "C-138A9": "60057003",  # ^201^Thallium (CID 18)
    "C-166A2": "75696008",  # ^45^Titanium (CID 4020)
    "C-172A5": "27081007",  # ^127^Xenon (CID 18)
    "C-172A8": "80751004",  # ^133^Xenon (CID 18)
    "C-181A3": "41758004",  # ^169^Ytterbium (CID 18)
    "C-162A3": "10738001",  # ^86^Yttrium (CID 4020)
    "C-162A7": "14691008",  # ^90^Yttrium (CID 18, 4020)
    "C-141A1": "65054007",  # ^62^Zinc (CID 4020)
    "C-168A4": "63360001",  # ^89^Zirconium (CID 4020)
    # radiopharmaceuticals (CID 25, CID 4021)
    "C-B1043": "129513004",  # Acetate C^11^ (CID 4021)
    "C-B103C": "129508003",  # Ammonia N^13^ (CID 4021)
    "C-B07DB": "422855001",  # ATSM Cu^64^ (CID 4021)
    "C-B07DC": "422540000",  # Butanol O^15^ (CID 4021)
    "C-B103B": "129507008",  # Carbon dioxide O^15^ (CID 4021)
    "C-B1045": "129515006",  # Carbon monoxide C^11^ (CID 4021)
    "C-B103A": "129506004",  # Carbon monoxide O^15^ (CID 4021)
    "C-B1302": "2942001",  # Carbon^14^ D-xylose (CID 25)
    "C-B1300": "42417005",  # Carbon^14^ triolein (CID 25)
    "C-B103F": "129511002",  # Carfentanil C^11^ (CID 4021)
    "C-B1140": "17069007",  # Chromic phosphate P^32^ (CID 25)
    "C-B1012": "4693006",  # Chromium^51^ albumin (CID 25)
    "C-B1013": "6973004",  # Chromium^51^ chloride (CID 25)
    "C-B1017": "78686003",  # Copper^64^ acetate (CID 25)
    "C-B1016": "88166005",  # Copper^64^ versenate (CID 25)
    "C-B1018": "29460005",  # Copper^67^ ceruloplasmin (CID 25)
    "C-B1021": "187006",  # Cyanocobalamin Co^57^ (CID 25)
    "C-B1022": "5692007",  # Cyanocobalamin Co^58^ (CID 25)
    "C-B1023": "72159005",  # Cyanocobalamin Co^60^ (CID 25)
    "C-B1000": "17600005",  # Diagnostic radioisotope (CID 25)
    "C-B07DD": "423498000",  # EDTA Ga^68^ (CID 4021)
    "C-B1122": "31192007",  # Ferrous chloride Fe^59^ (CID 25)
    "C-B1121": "87958003",  # Ferrous citrate Fe^59^ (CID 25)
    "C-B1123": "125001",  # Ferrous sulfate Fe^59^ (CID 25)
    "C-B1082": "71636003",  # Fibrinogen I^123^ (CID 25)
    "C-D6858": "712736002",  # Florbetaben F^18^ (CID 4021)
    "C-E0269": "456995000",  # Florbetapir F^18^ (CID 4021)
    "C-E0265": "456999006",  # Fluciclatide F^18^ (CID 4021)
    "C-E026A": "457000009",  # Fluciclovine F^18^ (CID 4021)
    "C-B07DE": "423543007",  # Flumazenil C^11^ (CID 4021)
    "C-B07DF": "422975006",  # Flumazenil F^18^ (CID 4021)
    "C-B07E0": "424708001",  # Fluorethyltyrosin F^18^ (CID 4021)
    "C-E0241": "5811000122108",  # Fluoro-L-dopa F^18^ (CID 4021)
    "C-B07E4": "423546004",  # Fluorobenzothiazole F^18^ (CID 4021)
    "C-E0273": "456992002",  # Fluorocholine F^18^ (CID 4021)
    "C-B1031": "35321007",  # Fluorodeoxyglucose F^18^ (CID 25, 4021)
    "C-B07E2": "422763008",  # Fluoromethane F^18^ (CID 4021)
    "C-B07E1": "422598008",  # Fluoromisonidazole F^18^ (CID 4021)
    "C-B07E3": "425236000",  # Fluorouracil F^18^ (CID 4021)
    "C-E0267": "456997008",  # Flutemetamol F^18^ (CID 4021)
    "C-B1041": "73065000",  # Gallium^67^ citrate (CID 25)
    "C-B103D": "129509006",  # Glutamate N^13^ (CID 4021)
    "C-145AB": "446871009",  # Indium^111 Capromab Pendetide (CID 25)
    "C-14512": "395742005",  # Indium^111 Chloride (CID 25)
    "C-B1061": "29218008",  # Indium^111^ pentetate (CID 25)
    "C-145AA": "446800006",  # Indium^111 Pentetreotide (CID 25)
    "C-B1066": "81621007",  # Indium^111^ red cell label (CID 25)
    "C-B1067": "78570003",  # Indium^111^ transferrin (CID 25)
    "C-B1065": "6516008",  # Indium^111^-Fe(OH) >3< (CID 25)
    "C-B1135": "424570009",  # Indium^111^oxyquinoline (CID 25)
    "C-B1068": "90617008",  # Indium^113m^ bleomycin (CID 25)
    "C-B1070": "42728008",  # Indium^113m^ pentetate (CID 25)
    "C-B1084": "72015003",  # Iodinated I^125^ albumin (CID 25)
    "C-B1100": "64488003",  # Iodinated I^125^ human serum albumin (CID 25)
    "C-B1096": "69839009",  # Iodinated I^125^ povidone (CID 25)
    "C-B1099": "70154008",  # Iodinated I^125^ sodium iodine (CID 25)
    "C-B1090": "55814006",  # Iodinated I^131^ aggregated albumin (CID 25)
    "C-B1089": "39200002",  # Iodinated I^131^ albumin (CID 25)
    "C-B1111": "52408003",  # Iodinated I^131^ gamma globulin (CID 25)
    "C-114AB": "447134003",  # Iodine^123 15-(4-Iodophenyl)-3(R,S)-Methylpentadecanoic Acid (CID 25)
    "C-B110E": "395787009",  # Iodine^123 3-Iodobenzylguanidine MIBG (CID 25)
    "C-B112D": "395789007",  # Iodine^131 3-Iodobenzylguanidine MIBG (CID 25)
    "C-B1109": "35884005",  # Iodine^131^ polyvinylpyrrolidone (CID 25)
    "C-B1087": "68967007",  # Iodocholesterol I^131^ (CID 25)
    "C-B1095": "33785000",  # Iodohippurate I^123^ sodium (CID 25)
    "C-B1105": "36900006",  # Iodohippurate I^125^ sodium (CID 25)
    "C-B1091": "33271006",  # Iodohippurate I^131^ sodium (CID 25)
    "C-B1108": "78481003",  # Iofetamine I^123^ hydrochloride (CID 25)
    "C-B07EC": "429296007",  # Ioflupane I^123^ (CID 25)
    "C-B1088": "55673009",  # Iothalamate sodium I^125^ (CID 25)
    "C-B1124": "60459006",  # Iron Fe^59^ labeled dextran (CID 25)
    "C-B07E5": "424789007",  # Mespiperone C^11^ (CID 4021)
    "C-B103E": "129510001",  # Methionine C^11^ (CID 4021)
    "C-114AA": "423249007",  # Monoclonal antibody I^124^ (CID 4021)
    "C-B1083": "22979004",  # Oleic acid I^125^ (CID 25)
    "C-B1039": "129505000",  # Oxygen-water O^15^ (CID 4021)
    "C-B1044": "129514005",  # Palmitate C^11^ (CID 4021)
    "C-B1251": "29348008",  # Pentetate calcium trisodium Yb^169^ (CID 25)
    "C-B1151": "111161000",  # Potassium carbonate K^42^ (CID 25)
    "C-B1152": "36641004",  # Potassium chloride K^42^ (CID 25)
    "C-B1150": "47729008",  # Potassium chloride K^43^ (CID 25)
    "C-B07E7": "422789008",  # PTSM Cu^62^ (CID 4021)
    "C-B1042": "129512009",  # Raclopride C^11^ (CID 4021)
    "C-B1085": "111159009",  # Rose Bengal sodium I^131^ (CID 25)
    "C-B1037": "129503007",  # Rubidium chloride Rb^82^ (CID 4021)
    "C-B10FB": "395894004",  # Selenium^75^ HCAT (CID 25)
    "C-B1171": "88473009",  # Selenomethionione Se^75^ (CID 25)
    "C-B1176": "6257000",  # Sodium chloride Na^22^ (CID 25)
    "C-B1175": "31527000",  # Sodium chloride Na^24^ (CID 25)
    "C-B1011": "62517004",  # Sodium chromate Cr^51^ (CID 25)
    "C-B1032": "129501009",  # Sodium fluoride F^18^ (CID 25, 4021)
    "C-B1081": "67690002",  # Sodium iodide I^123^ (CID 25)
    "C-B07E8": "422980002",  # Sodium iodide I^124^ (CID 4021)
    "C-B1086": "111160004",  # Sodium iodide I^131^ (CID 25)
    "C-B1206": "19495007",  # Sodium pertechnetate Tc^99m^ (CID 25)
    "C-B1142": "10781003",  # Sodium phosphate P^32^ (CID 25)
    "C-B1033": "129499001",  # Spiperone F^18^ (CID 4021)
    "C-B1180": "69076006",  # Strontium chloride Sr^85^ (CID 25)
    "C-B1181": "38424001",  # Strontium chloride Sr^87^ (CID 25)
    "C-B1184": "125701003",  # Strontium chloride Sr^89^ (CID 25)
    "C-B1182": "8858006",  # Strontium nitrate Sr^85^ (CID 25)
    "C-B1183": "31953001",  # Strontium nitrate Sr^87^ (CID 25)
    "C-B1205": "55494003",  # Technetium Tc^99c^ albumin microspheres (CID 25)
    "C-B1200": "85693008",  # Technetium Tc^99m^ aggregated albumin (CID 25)
    "C-B1133": "415704007",  # Technetium Tc^99m^ depreotide (CID 25)
    "C-B1207": "3040004",  # Technetium Tc^99m^ disofenin (CID 25)
    "C-B1223": "77313009",  # Technetium Tc^99m^ exametazime (CID 25)
    "C-B1210": "87853006",  # Technetium Tc^99m^ iron ascorbate (CID 25)
    "C-B1209": "7281000",  # Technetium Tc^99m^ lidofenin (CID 25)
    "C-B1208": "4832001",  # Technetium Tc^99m^ mebrofenin (CID 25)
    "C-B1218": "96390006",  # Technetium Tc^99m^ medronate (CID 25)
    "C-B1203": "81761004",  # Technetium Tc^99m^ microaggregated albumin (CID 25)
    "C-B1225": "87410002",  # Technetium Tc^99m^ N-substituted iminodiacetate (CID 25)
    "C-B1213": "53951001",  # Technetium Tc^99m^ oxidronate (CID 25)
    "C-163B0": "430276001",  # Technetium Tc^99m^ pentetate (CID 25)
    "C-B1216": "79610008",  # Technetium Tc^99m^ serum albumin (CID 25)
    "C-163AB": "424299003",  # Technetium Tc^99m^ sestamibi (CID 25)
    "C-B1220": "45849009",  # Technetium Tc^99m^ sodium glucoheptonate (CID 25)
    "C-B1211": "111162007",  # Technetium Tc^99m^ stannous etidronate (CID 25)
    "C-B1221": "24511001",  # Technetium Tc^99m^ succimer (CID 25)
    "C-B1222": "5931004",  # Technetium Tc^99m^ sulfur colloid (CID 25)
    "C-B1224": "89818005",  # Technetium Tc^99m^ tagged red cells (CID 25)
    "C-163AC": "424318009",  # Technetium Tc^99m^Teboroxime (CID 25)
    "C-163AD": "424118002",  # Technetium Tc^99m^Tetrofosmin (CID 25)
    "C-163B6": "446534003",  # Technetium^99m Galactosyl Human Serum Albumin Diethylenetriamine (CID 25)
    "C-163B9": "447125008",  # Technetium^99m labeled carbon (CID 25)
    "C-163B8": "446536001",  # Technetium^99m Mercaptoacetyl triglycine MAG3 (CID 25)
    "C-163BA": "447126009",  # Technetium^99m N-pyridoxyl-5-methyltryptophan (CID 25)
    "C-163BB": "447127000",  # Technetium^99m Phytate (CID 25)
    "C-163BC": "447128005",  # Technetium^99m Stannous Colloid (CID 25)
    "C-B1231": "73685002",  # Thallous chloride Tl^201^ (CID 25)
    "C-B1010": "439007",  # Therapeutic radioisotope (CID 25)
    "C-B1036": "129502002",  # Thymidine F^18^, FLT (CID 4021 until 2025-07; now lists 764937002 Fluorothymidine)
}

# SNOMED RT -> SNOMED CT (PS3.16 SNOMED mapping; rdsr-codes.md §2.10).  Entries marked "by meaning" are not in the
# standard's mapping table and are mapped by meaning (unconfirmed, see rdsr-codes.md §5).
SRT_TO_SCT: dict[str, str] = {
    # concept names
    "G-C0E8": "363703001",  # Has Intent
    "G-C171": "272741003",  # Laterality
    "G-C036": "370129005",  # Measurement Method
    "G-C32C": "408730004",  # Procedure Context
    "T-D0005": "91723000",  # Anatomical Structure
    "G-C0E3": "363698007",  # Finding Site
    "G-C2D0": "363589002",  # Associated Procedure
    "F-61FDB": "349358000",  # Radiopharmaceutical agent
    "C-10072": "89457008",  # Radionuclide
    "R-42806": "304283002",  # Radionuclide Half Life
    "G-C340": "410675002",  # Route of administration
    "G-C581": "272737002",  # Site of
    # values
    "R-0038D": "373066001",  # Yes
    "R-00339": "373067005",  # No
    "R-0038A": "373068000",  # Undetermined
    "P5-06000": "44491008",  # Fluoroscopy
    "P5-08000": "77477000",  # Computed tomography
    "P5-40010": "71651007",  # Mammography
    "P5-08001": "116152004",  # Spiral Acquisition
    "R-FB8F1": "702569007",  # Cone Beam Acquisition
    "A-2C090": "15869005",  # Dosimeter
    "R-10260": "414135002",  # Estimated
    "R-41D41": "258104002",  # Measured
    "R-41D2D": "258090004",  # Calculated
    "R-408C3": "261004008",  # Diagnostic Intent
    "R-41531": "262202000",  # Therapeutic Intent
    "R-002E9": "371931008",  # Combined diagnostic and therapeutic
    "G-A100": "24028007",  # Right
    "G-A101": "7771000",  # Left
    "G-A102": "51440002",  # Bilateral ("Right and left")
    "G-A103": "66459002",  # Unilateral
    "T-04020": "73056007",  # Right breast (CID 6022) -- NOT left
    "T-04030": "80248007",  # Left breast (CID 6022) -- NOT right
    "T-04080": "63762007",  # Both breasts
    "T-04000": "76752008",  # Breast
    "F-10450": "102538003",  # recumbent
    "F-10340": "40199007",  # supine
    "F-10310": "1240000",  # prone
    "F-10470": "102540008",  # headfirst
    "F-10480": "102541007",  # feet-first
    "R-10242": "399162004",  # cranio-caudal
    "R-10226": "399368009",  # medio-lateral oblique
    "R-10206": "399348003",  # antero-posterior
    "T-D3000": "51185008",  # Chest
    "T-D4000": "113345001",  # Abdomen
    "T-D1100": "69536005",  # Head
    "T-D0010": "38266002",  # Entire body
    "T-32000": "80891009",  # Heart
    "R-FAB56": "416775004",  # Chest, abdomen and pelvis
    "T-12710": "71341001",  # Femur
    "T-15710": "24136001",  # Hip joint
    "P5-0808E": "399331006",  # CT without contrast
    "P5-00100": "27483000",  # radiography with contrast
    "G-D101": "47625008",  # Intravenous route
    "G-D052": "103386002",  # Via vein
    "C-12000": "12503006",  # Aluminum
    "C-120F9": "12503006",  # legacy "Aluminum or Aluminum compound" (filter material: accepted as Aluminum)
    "C-12700": "66925006",  # Copper
    "C-127F9": "66925006",  # legacy Copper compound (by meaning)
    "C-13700": "41967008",  # Silver
    "C-137F9": "41967008",  # (by meaning)
    "C-16400": "26194003",  # Tungsten
    "C-164F9": "26194003",  # (by meaning)
    "C-16700": "59801003",  # Rhodium
    "C-167F9": "59801003",  # (by meaning)
    "C-15000": "71128006",  # Molybdenum
    "T-62000": "10200004",  # Liver
    "T-62002": "10200004",  # Liver, Siemens RRDSR spelling (by meaning)
    **RADIOPHARMACEUTICAL_SRT_TO_SCT,  # 18F (C-111A1), FDG (C-B1031) and every other agent and radionuclide
}

# Vendor mistakes: (scheme, value) as sent -> intended (scheme, value).  Sources: rdsr-codes.md §1.2.
ALIASES: dict[Key, Key] = {
    ("DCM", "111650"): ("DCM", "113650"),  # Hologic: "Strip filter" sent as 111650 (CID 10007 has 113650)
    ("SCT", "T-D400"): ("SCT", "113345001"),  # Philips Allura: SRT T-D400 "Abdomen" typo for T-D4000
    ("SRT", "T-D400"): ("SCT", "113345001"),
    # Laterality (SNOMED G-C171 / 272741003) sent under the DCM scheme by some mammography units
    ("DCM", "G-C171"): ("SCT", "272741003"),
    ("DCM", "272741003"): ("SCT", "272741003"),
    ("SCT", "1279505009"): ("SCT", "371931008"),  # combined diagnostic and therapeutic intent: accept both codes
}


def normalise(scheme: str, value: str) -> Key:
    """(scheme, value) with SNOMED RT mapped to SNOMED CT, UCM read as UCUM, and vendor aliases applied."""
    scheme = (scheme or "").strip()
    value = (value or "").strip()
    up = scheme.upper()
    if up in SNOMED_RT_SCHEMES:
        mapped = SRT_TO_SCT.get(value)
        key = ("SCT", mapped) if mapped else ("SCT", value)  # unmapped SRT code: keep value under SCT
        return ALIASES.get(key, ALIASES.get((up, value), key))
    if up == "UCM":
        scheme = "UCUM"
    elif up in ("SCT", "SNOMED", "SNOMED-CT", "SNOMEDCT"):
        scheme = "SCT"
    key = (scheme, value)
    return ALIASES.get(key, key)


def dcm(value: str) -> Key:
    return ("DCM", value)


def sct(value: str) -> Key:
    return ("SCT", value)


# --- root concepts --------------------------------------------------------------------------------------------------
XRAY_DOSE_REPORT = dcm("113701")  # TID 10001 / 10011 root
RADIOPHARM_DOSE_REPORT = dcm("113500")  # TID 10021 root
SIEMENS_RADSUM = ("99SMS_RADSUM", "C-10")  # Siemens private Radiation Summary Report

# --- TID 10001 / 10011 root items ---------------------------------------------------------------------------------
PROCEDURE_REPORTED = dcm("121058")
HAS_INTENT = sct("363703001")
SCOPE_OF_ACCUMULATION = dcm("113705")
STUDY_INSTANCE_UID = dcm("110180")
PPS_SOP_INSTANCE_UID = dcm("121126")
SERIES_INSTANCE_UID = dcm("112002")
START_OF_XRAY_IRRADIATION = dcm("113809")
END_OF_XRAY_IRRADIATION = dcm("113810")
SOURCE_OF_DOSE_INFORMATION = dcm("113854")
OBSERVER_TYPE = dcm("121005")
DEVICE_OBSERVER_UID = dcm("121012")
DEVICE_OBSERVER_NAME = dcm("121013")
DEVICE_OBSERVER_MANUFACTURER = dcm("121014")
DEVICE_OBSERVER_MODEL = dcm("121015")
DEVICE_OBSERVER_SERIAL = dcm("121016")
DEVICE_OBSERVER_LOCATION = dcm("121017")
PERSON_NAME = dcm("113870")
PERSON_ROLE_IN_PROCEDURE = dcm("113875")
COMMENT = dcm("121106")

# procedure reported values
PROC_CT = sct("77477000")
PROC_PROJECTION = dcm("113704")
PROC_MAMMOGRAPHY = sct("71651007")

# scope values
SCOPE_STUDY = dcm("113014")
SCOPE_SERIES = dcm("113015")
SCOPE_PPS = dcm("113016")
SCOPE_IRRADIATION_EVENT = dcm("113017")
SCOPE_NAMES = {SCOPE_STUDY: "study", SCOPE_SERIES: "series", SCOPE_PPS: "performed_procedure_step",
               SCOPE_IRRADIATION_EVENT: "irradiation_event"}

YES = sct("373066001")
NO = sct("373067005")

# --- TID 10002 accumulated projection -----------------------------------------------------------------------------
ACCUMULATED_XRAY_DOSE = dcm("113702")
ACQUISITION_PLANE = dcm("113764")
PLANE_CODES = {dcm("113620"): "A", dcm("113621"): "B", dcm("113622"): "single", dcm("113890"): "all"}
ACCUMULATED_AGD = dcm("111637")
LATERALITY = sct("272741003")
RIGHT_BREAST = sct("73056007")
LEFT_BREAST = sct("80248007")
BOTH_BREASTS = sct("63762007")
BREAST_SIDE = {RIGHT_BREAST: "right", LEFT_BREAST: "left", BOTH_BREASTS: "both"}
LATERALITY_SIDE = {sct("24028007"): "right", sct("7771000"): "left", sct("51440002"): "both",
                   sct("66459002"): "unilateral", **BREAST_SIDE}

# accumulated quantity concepts -> canonical name
ACCUMULATED_PROJECTION_QUANTITIES: dict[Key, str] = {
    dcm("113722"): "kap_total_gycm2",
    dcm("113726"): "fluoro_kap_total_gycm2",
    dcm("113727"): "acquisition_kap_total_gycm2",
    dcm("113725"): "ka_r_total_mgy",
    dcm("113728"): "fluoro_ka_r_total_mgy",
    dcm("113729"): "acquisition_ka_r_total_mgy",
    dcm("113730"): "fluoro_time_total_s",
    dcm("113855"): "acquisition_time_total_s",
    dcm("113731"): "total_number_of_radiographic_frames",
}

# --- TID 10003 irradiation event -----------------------------------------------------------------------------------
IRRADIATION_EVENT_XRAY_DATA = dcm("113706")
IRRADIATION_EVENT_UID = dcm("113769")
IRRADIATION_EVENT_LABEL = dcm("113605")
DATETIME_STARTED = dcm("111526")
IRRADIATION_EVENT_TYPE = dcm("113721")
ACQUISITION_PROTOCOL = dcm("125203")
TARGET_REGION = dcm("123014")
ANATOMICAL_STRUCTURE = sct("91723000")
IMAGE_VIEW = dcm("111031")
# Image View codes (PS3.16 CID 4010 "DX View", CID 4014 "View for Mammography") -> the View Position term an image
# header carries for the same view (PS3.3 C.8.11.5.1.1 AP/PA/LL/RL; the mammography view abbreviations of
# C.8.11.7), so a view compares the same whichever object sent it.  Views without such a term keep their meaning.
VIEW_POSITIONS: dict[Key, str] = {
    sct("399348003"): "AP",  # antero-posterior
    sct("272479007"): "PA",  # postero-anterior
    sct("399067008"): "LAT",  # lateral
    sct("399173006"): "LL",  # left lateral
    sct("399198007"): "RL",  # right lateral
    sct("399162004"): "CC",  # cranio-caudal
    sct("399368009"): "MLO",  # medio-lateral oblique
    sct("399260004"): "ML",  # medial-lateral
    sct("399352003"): "LM",  # latero-medial
    sct("399099002"): "LMO",  # latero-medial oblique
    sct("399192008"): "XCCL",  # cranio-caudal exaggerated laterally
    sct("399101009"): "XCCM",  # cranio-caudal exaggerated medially
}
REFERENCE_POINT_DEFINITION = dcm("113780")
FLUORO_MODE = dcm("113732")
ANODE_TARGET_MATERIAL = dcm("111632")
XRAY_GRID = dcm("111635")
XRAY_FILTERS = dcm("113771")
XRAY_FILTER_TYPE = dcm("113772")
XRAY_FILTER_MATERIAL = dcm("113757")
XRAY_FILTER_THICKNESS_MIN = dcm("113758")
XRAY_FILTER_THICKNESS_MAX = dcm("113773")
PATIENT_TABLE_RELATIONSHIP = dcm("113745")
PATIENT_ORIENTATION = dcm("113743")
PATIENT_ORIENTATION_MODIFIER = dcm("113744")
AVERAGE_XRAY_TUBE_CURRENT = dcm("113767")
EXPOSURE = dcm("113736")  # TID 10003B, uA.s; one per projection in a tomosynthesis event

EVENT_PROJECTION_QUANTITIES: dict[Key, str] = {
    dcm("122130"): "kap_gycm2",
    dcm("113738"): "ka_r_mgy",
    dcm("111631"): "agd_mgy",
    dcm("111636"): "esak_mgy",
    dcm("111633"): "compression_thickness_mm",
    dcm("111634"): "hvl_mmal",
    dcm("112011"): "positioner_primary_angle_deg",
    dcm("112012"): "positioner_secondary_angle_deg",
    dcm("113751"): "table_longitudinal_position_mm",
    dcm("113752"): "table_lateral_position_mm",
    dcm("113753"): "table_height_position_mm",
    dcm("113748"): "distance_source_to_isocenter_mm",
    dcm("113750"): "distance_source_to_detector_mm",
    dcm("113737"): "distance_source_to_rp_mm",
    dcm("113790"): "collimated_field_area_m2",
    dcm("113788"): "collimated_field_height_mm",
    dcm("113789"): "collimated_field_width_mm",
    dcm("113791"): "pulse_rate_per_s",
    dcm("113793"): "pulse_width_ms",
    dcm("113768"): "number_of_pulses",
    dcm("113742"): "irradiation_duration_s",
    EXPOSURE: "exposure_mas",
    dcm("113733"): "kvp",
    dcm("113734"): "tube_current_ma",
    dcm("113824"): "exposure_time_s",
    dcm("113735"): "exposure_time_s",  # Siemens "Exposure Time" (rdsr-codes.md §0 rule 4)
}

# --- TID 10011-10015 CT ---------------------------------------------------------------------------------------------
CT_ACCUMULATED_DOSE_DATA = dcm("113811")
CT_TOTAL_EVENTS = dcm("113812")
CT_DLP_TOTAL = dcm("113813")
CT_DLP_SUBTOTAL = dcm("130745")
CT_EFFECTIVE_DOSE_TOTAL = dcm("113814")
CT_ACQUISITION = dcm("113819")
CT_ACQUISITION_TYPE = dcm("113820")
CT_ACQUISITION_PARAMETERS = dcm("113822")
CT_XRAY_SOURCE_PARAMETERS = dcm("113831")
CT_SOURCE_ID = dcm("113832")
CT_DOSE = dcm("113829")
CTDIW_PHANTOM_TYPE = dcm("113835")
PROCEDURE_CONTEXT = sct("408730004")
XRAY_MODULATION_TYPE = dcm("113842")
SSDE = dcm("113930")
WATER_EQUIVALENT_DIAMETER = dcm("113980")
# patient size items under the SSDE item (TID 10013; rdsr-codes.md lists them there, layout unconfirmed); concept
# codes as in the PS3.16 DCM code table (pydicom 3.0.2 pydicom/sr/_concepts_dict.py: 113931 Measured Lateral
# Dimension, 113932 Measured AP Dimension, 113933 Derived Effective Diameter)
MEASURED_LATERAL_DIMENSION = dcm("113931")
MEASURED_AP_DIMENSION = dcm("113932")
DERIVED_EFFECTIVE_DIAMETER = dcm("113933")
EFFECTIVE_DOSE = dcm("113839")
DOSE_CHECK_ALERT = dcm("113900")
DOSE_CHECK_NOTIFICATION = dcm("113908")
REASON_FOR_PROCEEDING = dcm("113907")

PHANTOM_HEAD = dcm("113690")
PHANTOM_BODY = dcm("113691")
PHANTOMS = {PHANTOM_HEAD: "head", PHANTOM_BODY: "body", dcm("130541"): "10cm"}

CT_PARAMETER_QUANTITIES: dict[Key, str] = {
    dcm("113824"): "exposure_time_s",
    dcm("113825"): "scanning_length_mm",
    dcm("113826"): "nominal_single_collimation_mm",
    dcm("113827"): "nominal_total_collimation_mm",
    dcm("113828"): "pitch_factor",
    dcm("113823"): "number_of_xray_sources",
}
CT_SOURCE_QUANTITIES: dict[Key, str] = {
    dcm("113733"): "kvp",
    dcm("113833"): "max_tube_current_ma",
    dcm("113734"): "tube_current_ma",
    dcm("113834"): "exposure_time_per_rotation_s",
}
CT_DOSE_QUANTITIES: dict[Key, str] = {
    dcm("113830"): "ctdivol_mgy",
    dcm("113838"): "dlp_mgycm",
    dcm("113839"): "effective_dose_msv",
    dcm("113930"): "ssde_mgy",
    dcm("113980"): "water_equivalent_diameter_mm",
}
# the patient's size as the SSDE item states it (children of SSDE 113930): quantity names of the catalogue, in mm
SSDE_SIZE_QUANTITIES: dict[Key, str] = {
    WATER_EQUIVALENT_DIAMETER: "water_equivalent_diameter_mm",
    MEASURED_LATERAL_DIMENSION: "measured_lateral_dimension_mm",
    MEASURED_AP_DIMENSION: "measured_ap_dimension_mm",
    DERIVED_EFFECTIVE_DIAMETER: "derived_effective_diameter_mm",
}
# TID 10015: (configured flag, value, forward estimate) concept codes for DLP and CTDIvol
DOSE_CHECK_ALERT_CODES = {
    "dlp_configured": dcm("113901"), "ctdivol_configured": dcm("113902"),
    "dlp_value": dcm("113903"), "ctdivol_value": dcm("113904"),
    "dlp_forward": dcm("113905"), "ctdivol_forward": dcm("113906"),
}
DOSE_CHECK_NOTIFICATION_CODES = {
    "dlp_configured": dcm("113909"), "ctdivol_configured": dcm("113910"),
    "dlp_value": dcm("113911"), "ctdivol_value": dcm("113912"),
    "dlp_forward": dcm("113913"), "ctdivol_forward": dcm("113914"),
}

# --- event types: CID 10002 (projection) and CID 10013 (CT acquisition type) ---------------------------------------
EVENT_TYPES: dict[Key, str] = {
    dcm("113611"): "stationary_acquisition",
    dcm("113612"): "stepping_acquisition",
    dcm("113613"): "rotational_acquisition",
    sct("44491008"): "fluoroscopy",
}
CT_ACQUISITION_TYPES: dict[Key, str] = {
    sct("116152004"): "spiral_acquisition",
    dcm("113804"): "sequenced_acquisition",
    dcm("113805"): "constant_angle_acquisition",
    dcm("113806"): "stationary_acquisition",
    dcm("113807"): "free_acquisition",
    sct("702569007"): "cone_beam_acquisition",  # CID 10013 (was SRT R-FB8F1)
}
FLUOROSCOPY = sct("44491008")
CONSTANT_ANGLE = dcm("113805")

# --- TID 10021-10024 radiopharmaceutical ---------------------------------------------------------------------------
ASSOCIATED_PROCEDURE = sct("363589002")
RADIOPHARM_ADMINISTRATION = dcm("113502")
RADIOPHARM_AGENT = sct("349358000")
RADIONUCLIDE = sct("89457008")
RADIONUCLIDE_HALF_LIFE = sct("304283002")
RADIOPHARM_EVENT_UID = dcm("113503")
RADIOPHARM_START = dcm("123003")
RADIOPHARM_STOP = dcm("123004")
ADMINISTERED_ACTIVITY = dcm("113507")
PRE_ADMIN_ACTIVITY = dcm("113508")
POST_ADMIN_ACTIVITY = dcm("113509")
ROUTE_OF_ADMINISTRATION = sct("410675002")
SITE_OF = sct("272737002")
ORGAN_DOSE_INFORMATION = dcm("113517")
ORGAN_DOSE = dcm("113518")
FINDING_SITE = sct("363698007")
REFERENCE_AUTHORITY = dcm("121406")
PATIENT_CHARACTERISTICS = dcm("121118")
SUBJECT_AGE = dcm("121033")
SUBJECT_SEX = dcm("121032")
PATIENT_HEIGHT = ("LN", "8302-2")
PATIENT_WEIGHT = ("LN", "29463-7")
AGE_UNITS_YEARS = {"a": 1.0, "mo": 1 / 12, "wk": 7 / 365.25, "d": 1 / 365.25, "h": 1 / 8766, "min": 1 / 525960}

# --- Siemens private summary (99SMS_RADSUM, rdsr-codes.md §1.2) ------------------------------------------------------
RADSUM_QUANTITIES: dict[Key, str] = {
    ("99SMS_RADSUM", "C-202"): "fluoro_time_total_s",
    ("99SMS_RADSUM", "C-204"): "kap_total_gycm2",
    ("99SMS_RADSUM", "C-210"): "ka_r_total_mgy",
}
RADSUM_EXPOSURES = ("99SMS_RADSUM", "C-200")
RADSUM_START = ("99SMS_RADSUM", "C-206")
RADSUM_END = ("99SMS_RADSUM", "C-208")

# --- SOP classes (PS3.6 / pydicom UID dictionary; rdsr-codes.md §4.1) ---------------------------------------------
SOP_XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
SOP_RRDSR = "1.2.840.10008.5.1.4.1.1.88.68"
SOP_PRDSR = "1.2.840.10008.5.1.4.1.1.88.73"
SOP_ENHANCED_RDSR = "1.2.840.10008.5.1.4.1.1.88.76"
SOP_ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
SOP_COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
SOP_PET = "1.2.840.10008.5.1.4.1.1.128"  # classic PET Image Storage: Radionuclide Total Dose in Bq
SOP_NM = ("1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.5")  # NM (current, retired): MBq
SOP_ENHANCED_PET = ("1.2.840.10008.5.1.4.1.1.130", "1.2.840.10008.5.1.4.1.1.128.1")  # MBq
