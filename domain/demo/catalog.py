"""Fixed vocabularies of the demo: regions, industries, sizes, names and the product range.

Kept as plain data so the generators stay about behaviour, and so a change of wording never changes how
many random numbers are drawn (the files stay reproducible for a given seed).
"""
from __future__ import annotations

REGIONS = ("north", "south", "east", "west", "central")
INDUSTRIES = ("retail", "hvac", "manufacturing", "logistics", "healthcare", "construction", "food", "software")
SIZES = ("small", "medium", "large", "enterprise")
SIZE_SHARES = (0.50, 0.30, 0.15, 0.05)

# Per size: median yearly revenue, median orders a year, interactions a year, chance of 1..4 lines.
SIZE_REVENUE = (2_500.0, 9_000.0, 35_000.0, 120_000.0)
SIZE_ORDERS = (4.0, 6.0, 8.0, 12.0)
SIZE_INTERACTIONS = (1.2, 2.5, 5.0, 10.0)
SIZE_DISCOUNT = (1.00, 0.97, 0.93, 0.88)
LINES_P = (
    (0.55, 0.27, 0.12, 0.06),
    (0.45, 0.30, 0.15, 0.10),
    (0.35, 0.30, 0.20, 0.15),
    (0.30, 0.30, 0.22, 0.18),
)

REPS_PER_REGION = 8
REP_FIRST = ("Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars",
             "Mia", "Noah", "Olga", "Paul", "Rosa", "Samir", "Tanja", "Uwe", "Vera", "Wim", "Yara", "Zoe")
REP_LAST = ("Schmidt", "Meyer", "Novak", "Costa", "Larsen", "Okafor", "Berger", "Rossi", "Keller", "Dubois",
            "Yilmaz", "Hansen", "Moreau", "Kowalski", "Brandt", "Silva", "Weber", "Lindqvist", "Fischer", "Horvat")

NAME_STEMS = ("Alpen", "Nord", "Summit", "Blue", "Falcon", "Oak", "River", "Granite", "Orion", "Cedar", "Harbor",
              "Linden", "Polar", "Vertex", "Meridian", "Sun", "Iron", "Silver", "Birch", "Crest", "Delta", "Echo",
              "Fjord", "Helix", "Juniper", "Kestrel", "Lumen", "Maple", "Nova", "Pioneer", "Quarry", "Rhein",
              "Sierra", "Tundra", "Union", "Vista", "Willow", "Zenith", "Atlas", "Beacon")
INDUSTRY_WORDS = {
    "retail": ("Stores", "Markt", "Retail", "Shop"),
    "hvac": ("Klima", "Heating", "Air", "Thermo"),
    "manufacturing": ("Werke", "Industries", "Fabrication", "Tooling"),
    "logistics": ("Logistics", "Freight", "Transport", "Cargo"),
    "healthcare": ("Clinic", "Care", "Medical", "Health"),
    "construction": ("Bau", "Builders", "Construction", "Structures"),
    "food": ("Foods", "Catering", "Bakery", "Fresh"),
    "software": ("Software", "Systems", "Digital", "Labs"),
}
LEGAL_FORMS = ("GmbH", "AG", "Ltd", "Inc", "& Co. KG", "SE", "LLC", "BV")
BRANCH_WORDS = ("North", "South", "East", "West", "Central", "Services", "Trading", "Solutions", "Holding")

# (name, industry or None for everyone, price band, season months or ()). Prices are drawn from the band.
PRODUCTS = (
    ("POS terminal", "retail", (400, 900), ()),
    ("Shelf system module", "retail", (80, 250), ()),
    ("Price label roll", "retail", (5, 15), ()),
    ("Shopping basket set", "retail", (25, 60), ()),
    ("Holiday display set", "retail", (120, 300), (11, 12)),
    ("Heat pump service kit", "hvac", (150, 400), (10, 11, 12)),
    ("AC maintenance pack", "hvac", (90, 220), (5, 6, 7)),
    ("Copper pipe 15mm (50m)", "hvac", (60, 140), ()),
    ("Thermostat controller", "hvac", (40, 120), ()),
    ("Air filter F7", "hvac", (10, 30), ()),
    ("CNC tooling insert", "manufacturing", (15, 45), ()),
    ("Hydraulic oil 20L", "manufacturing", (50, 110), ()),
    ("Bearing assortment", "manufacturing", (30, 90), ()),
    ("Safety gloves (box)", "manufacturing", (8, 20), ()),
    ("Spindle motor", "manufacturing", (700, 1600), ()),
    ("Pallet wrap film", "logistics", (15, 35), ()),
    ("Euro pallet", "logistics", (10, 25), ()),
    ("Handheld scanner", "logistics", (250, 600), ()),
    ("Strapping tool", "logistics", (60, 160), ()),
    ("Fleet tyre set", "logistics", (400, 900), ()),
    ("Examination gloves (case)", "healthcare", (20, 45), ()),
    ("Disinfectant 5L", "healthcare", (12, 30), ()),
    ("Patient monitor", "healthcare", (900, 2200), ()),
    ("Wound care kit", "healthcare", (25, 70), ()),
    ("Flu season vaccine cooler", "healthcare", (150, 350), (9, 10)),
    ("Concrete anchor set", "construction", (20, 55), ()),
    ("Scaffold clamp (50)", "construction", (90, 200), ()),
    ("Frost protection blanket", "construction", (40, 110), (11, 12)),
    ("Laser level", "construction", (200, 500), ()),
    ("Work boots S3", "construction", (50, 120), ()),
    ("Catering tray set", "food", (30, 80), ()),
    ("Vacuum bags (1000)", "food", (20, 50), ()),
    ("Summer beverage cooler", "food", (150, 380), (6, 7, 8)),
    ("Food-grade lubricant", "food", (15, 40), ()),
    ("Cold-room thermometer", "food", (25, 70), ()),
    ("Cloud backup licence", "software", (40, 120), ()),
    ("Developer laptop", "software", (900, 2000), ()),
    ("Monitor 27in", "software", (180, 400), ()),
    ("Support hours block", "software", (300, 800), ()),
    ("Security token", "software", (20, 60), ()),
    ("Copy paper (box)", None, (18, 35), ()),
    ("Toner cartridge", None, (45, 110), ()),
    ("First-aid kit", None, (25, 60), ()),
    ("LED panel light", None, (35, 90), ()),
    ("Cleaning service visit", None, (80, 220), ()),
    ("Office chair", None, (120, 350), ()),
    ("Shipping boxes (100)", None, (30, 70), ()),
    ("Extension cable set", None, (15, 40), ()),
    ("Custom engineering hour", None, (90, 160), ()),
    ("Installation service", None, (150, 450), ()),
)
# Products sold without a known unit cost (services priced by the hour): their margin stays unknown.
UNKNOWN_COST_PRODUCTS = ("Support hours block", "Custom engineering hour", "Installation service")

COMPLAINT_CATEGORIES = ("quality", "delivery", "billing", "service", "damaged")
DELAY_REASONS = ("carrier delay", "out of stock", "customs", "weather", "address error", "warehouse backlog")
INTERACTION_KINDS = ("call", "email", "visit")

# products.csv `category`: every product not listed here is "goods".
PRODUCT_CATEGORIES = {
    "service": ("AC maintenance pack", "Support hours block", "Cleaning service visit", "Custom engineering hour",
                "Installation service"),
    "software": ("Cloud backup licence",),
    "parts": ("Shelf system module", "Heat pump service kit", "Copper pipe 15mm (50m)", "Thermostat controller",
              "Air filter F7", "CNC tooling insert", "Bearing assortment", "Spindle motor", "Fleet tyre set",
              "Concrete anchor set", "Scaffold clamp (50)", "Toner cartridge"),
}


def product_category(product: str) -> str:
    return next((name for name, products in PRODUCT_CATEGORIES.items() if product in products), "goods")


# Accounts: payment terms offered per size (days, chance), credit grades, and how customers pay their invoices.
PAYMENT_TERMS = (14, 30, 45, 60)
TERMS_P = (
    (0.45, 0.55, 0.00, 0.00),
    (0.10, 0.70, 0.20, 0.00),
    (0.00, 0.30, 0.50, 0.20),
    (0.00, 0.00, 0.30, 0.70),
)
CREDIT_GRADES = ("A", "B", "C", "D")
CREDIT_FACTOR = (1.5, 1.2, 0.8, 0.4)  # credit limit per grade, times the revenue of the payment terms plus a month
PAYMENT_HABITS = ("prompt", "on_time", "slow", "bad")
HABIT_P = (0.37, 0.48, 0.12, 0.03)
GRADE_P = (  # per habit: chance of A..D
    (0.70, 0.30, 0.00, 0.00),
    (0.30, 0.50, 0.20, 0.00),
    (0.00, 0.30, 0.50, 0.20),
    (0.00, 0.00, 0.40, 0.60),
)

# Surveys and the sales pipeline.
SURVEY_CHANNELS = ("email", "web", "phone")
SURVEY_CHANNEL_P = (0.55, 0.30, 0.15)
SURVEY_COMMENTS = {  # by NPS band: detractor, passive, promoter
    "detractor": ("Deliveries keep arriving late.", "Billing errors again this quarter.",
                  "Nobody called back about our complaint.\nWe are looking at other suppliers.",
                  "Prices went up, service went down."),
    "passive": ("Fine overall, delivery times could be better.", "OK, but the web shop is slow.",
                "Good products, support is hard to reach."),
    "promoter": ("Great service from our account manager!", "Fast delivery, always reliable.",
                 "Would recommend to any partner.", "Best supplier we work with."),
}
OPEN_STAGES = ("qualification", "proposal", "negotiation")
OPEN_STAGE_PROBABILITY = (0.2, 0.4, 0.7)
CLOSED_STAGES = {"won": "closed_won", "lost": "closed_lost"}
OPPORTUNITIES_PER_YEAR = (0.4, 0.8, 1.5, 3.0)  # per size
