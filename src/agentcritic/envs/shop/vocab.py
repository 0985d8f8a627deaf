"""The word lists the catalogue generator draws from: product types, attributes, option values.

Five departments, as in WebShop (beauty, grocery, fashion, home, electronics), 74 product types.
Each type names its category, its own attributes (joined with its department's), its option groups
(each a list of values from :data:`OPTION_VALUES`), a price range and materials. The lists are
plain data; :mod:`agentcritic.envs.shop.catalogue` turns them into products.

Rules the generator relies on (checked by the tests): option values of one type are distinct across
its groups, no option value equals a page button (``Buy Now``, ``Description`` …), and every text is
lower case without ``[`` ``]`` (the action grammar's brackets).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProductType:
    """One kind of product, e.g. ``hair extension`` in Beauty & Personal Care › Hair Care."""

    name: str
    department: str
    category: str
    attributes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]  # (group shown on the item page, key into OPTION_VALUES)
    price: tuple[float, float]
    materials: tuple[str, ...] = ()
    plural: bool = False  # "jeans", "headphones": no article in instructions

    @property
    def nouns(self) -> tuple[str, ...]:
        return tuple(self.name.replace("-", " ").split())


# How each option group is phrased inside an instruction.
OPTION_PHRASES: dict[str, str] = {
    "color": "{v} color",
    "size": "size {v}",
    "length": "{v} length",
    "shade": "{v} shade",
    "scent": "{v} scent",
    "flavor": "{v} flavor",
    "roast": "{v}",
    "pack": "{v}",
    "style": "{v} style",
    "model": "for {v}",
    "capacity": "{v} capacity",
}

OPTION_VALUES: dict[str, tuple[str, ...]] = {
    # fashion
    "apparel_color": ("black", "white", "navy blue", "heather grey", "red", "olive green", "burgundy",
                      "beige", "royal blue", "pink", "charcoal", "khaki"),
    "apparel_size": ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large"),
    "shoe_size": ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12"),
    "waist_length": ("28w x 30l", "30w x 30l", "30w x 32l", "32w x 30l", "32w x 32l", "34w x 32l",
                     "34w x 34l", "36w x 32l", "36w x 34l", "38w x 34l", "40w x 32l", "40w x 34l"),
    "denim_color": ("dark wash", "medium wash", "light wash", "black", "grey"),
    "frame_color": ("black", "tortoise", "gold", "silver", "clear", "brown"),
    # beauty
    "hair_color": ("natural black", "dark brown", "medium brown", "ash blonde", "honey blonde",
                   "platinum blonde", "auburn", "ombre brown"),
    "hair_length": ("12 inch", "14 inch", "16 inch", "18 inch", "20 inch", "22 inch", "24 inch"),
    "shade": ("ivory", "porcelain", "sand", "honey", "caramel", "espresso", "nude pink", "ruby red",
              "coral", "mauve", "plum", "berry"),
    "palette": ("nude", "smoky", "sunset", "rose", "bronze", "pastel"),
    "volume": ("1 fl oz", "1.7 fl oz", "3.4 fl oz", "8 fl oz", "12 fl oz", "16 fl oz"),
    "scent": ("lavender", "coconut", "vanilla", "unscented", "citrus", "rose", "eucalyptus mint",
              "sandalwood"),
    "beauty_color": ("black", "white", "rose gold", "pink", "purple", "teal"),
    # grocery
    "bar_flavor": ("chocolate chip", "peanut butter", "cookies and cream", "birthday cake",
                   "salted caramel", "cinnamon roll"),
    "chip_flavor": ("sea salt", "barbecue", "sour cream and onion", "salt and vinegar",
                    "spicy jalapeno", "cheddar"),
    "mix_flavor": ("original", "tropical", "dark chocolate", "honey roasted", "cranberry almond"),
    "jerky_flavor": ("original", "teriyaki", "peppered", "sweet and spicy", "hickory smoked"),
    "tea_flavor": ("peppermint", "chamomile", "earl grey", "jasmine", "lemon ginger", "matcha",
                   "hibiscus"),
    "roast": ("light roast", "medium roast", "dark roast", "espresso roast"),
    "water_flavor": ("lime", "grapefruit", "black cherry", "lemon", "mango", "original"),
    "sauce_flavor": ("marinara", "tomato basil", "arrabbiata", "four cheese", "roasted garlic"),
    "chocolate_flavor": ("sea salt", "almond", "orange", "mint", "raspberry", "original"),
    "gummy_flavor": ("sour", "fruit", "watermelon", "cherry", "mixed berry"),
    "butter_style": ("creamy", "crunchy", "extra crunchy"),
    "food_weight": ("8 ounce", "12 ounce", "16 ounce", "1 pound", "2 pound", "5 pound"),
    "bottle": ("250 ml", "500 ml", "750 ml", "1 liter", "3 liter"),
    "pack": ("pack of 1", "pack of 2", "pack of 3", "pack of 4", "pack of 6", "pack of 12",
             "pack of 24"),
    # home
    "home_color": ("black", "white", "grey", "walnut", "natural", "espresso brown", "navy", "sage green",
                   "cream", "light blue"),
    "shelf_size": ("3 tier", "4 tier", "5 tier", "6 tier"),
    "sets": ("set of 1", "set of 2", "set of 3", "set of 4"),
    "bed_size": ("twin", "twin xl", "full", "queen", "king", "california king"),
    "pillow_size": ("standard", "queen", "king", "body pillow"),
    "blanket_size": ("50 x 60 inch", "60 x 80 inch", "90 x 90 inch", "108 x 90 inch"),
    "mug_capacity": ("11 oz", "15 oz", "20 oz", "24 oz"),
    "pan_size": ("8 inch", "10 inch", "12 inch", "14 inch"),
    "container_sets": ("set of 5", "set of 10", "set of 16", "set of 24"),
    "clock_size": ("10 inch", "12 inch", "14 inch", "16 inch"),
    "curtain_size": ("52 x 63 inch", "52 x 84 inch", "52 x 95 inch", "52 x 108 inch"),
    "rug_size": ("2 x 3 ft", "3 x 5 ft", "4 x 6 ft", "5 x 7 ft", "8 x 10 ft"),
    # electronics
    "device_color": ("black", "white", "silver", "space grey", "blue", "rose gold", "green", "purple"),
    "phone_model": ("iphone 13", "iphone 14", "iphone 14 pro", "iphone 15", "iphone 15 pro max",
                    "galaxy s23", "galaxy s24", "pixel 8"),
    "cable_length": ("3 ft", "6 ft", "10 ft", "15 ft", "25 ft"),
    "small_pack": ("pack of 1", "pack of 2", "pack of 3"),
    "keyboard_style": ("full size", "tenkeyless", "60 percent"),
    "hub_style": ("4 port", "7 port", "10 port"),
    "tripod_size": ("50 inch", "60 inch", "72 inch"),
}

DEPARTMENT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "beauty & personal care": ("cruelty free", "paraben free", "vegan", "dermatologist tested",
                               "travel size", "long lasting", "fragrance free", "easy to use"),
    "grocery & gourmet food": ("gluten free", "non gmo", "organic", "kosher", "plant based",
                               "sugar free", "low calorie", "natural ingredients"),
    "clothing, shoes & jewelry": ("machine wash", "hand wash", "quick drying", "moisture wicking",
                                  "relaxed fit", "slim fit", "everyday wear", "stretchy"),
    "home & kitchen": ("easy to clean", "easy to assemble", "space saving", "heavy duty", "modern",
                       "durable", "living room", "bedroom"),
    "electronics": ("high definition", "easy to install", "durable", "lightweight", "usb powered",
                    "energy efficient", "compact design", "travel friendly"),
}

BEAUTY, GROCERY, FASHION, HOME, ELEC = list(DEPARTMENT_ATTRIBUTES)


def _t(name, dept, cat, attrs, options, price, materials=(), plural=False) -> ProductType:
    return ProductType(name, dept, cat, tuple(attrs.split(", ")), tuple(options), price,
                       tuple(materials), plural)


PRODUCT_TYPES: tuple[ProductType, ...] = (
    # ---------------------------------------------------------------- beauty & personal care
    _t("hair extension", BEAUTY, "hair care",
       "natural looking, clip in, heat resistant, tangle free, easy to apply, thick full",
       [("color", "hair_color"), ("length", "hair_length")], (15, 90), ("human hair", "synthetic fiber")),
    _t("wig", BEAUTY, "hair care",
       "natural looking, heat resistant, lace front, adjustable strap, glueless, pre plucked",
       [("color", "hair_color"), ("length", "hair_length")], (25, 150), ("human hair", "synthetic fiber")),
    _t("shampoo", BEAUTY, "hair care",
       "sulfate free, color safe, dry scalp, volumizing, anti dandruff, hydrating",
       [("scent", "scent"), ("size", "volume")], (6, 35), ("argan oil", "tea tree oil")),
    _t("hair dryer", BEAUTY, "hair care",
       "ionic, fast drying, low noise, diffuser attachment, foldable handle, salon grade",
       [("color", "beauty_color")], (20, 120), ("ceramic", "tourmaline")),
    _t("face moisturizer", BEAUTY, "skin care",
       "hyaluronic acid, oil free, fine lines, sensitive skin, non comedogenic, spf 30",
       [("scent", "scent"), ("size", "volume")], (8, 60), ("shea butter", "aloe vera")),
    _t("sunscreen", BEAUTY, "skin care",
       "water resistant, broad spectrum, reef safe, mineral based, spf 50, non greasy",
       [("size", "volume"), ("pack", "small_pack")], (7, 40), ("zinc oxide",)),
    _t("face serum", BEAUTY, "skin care",
       "vitamin c, dark spots, anti aging, brightening, fine lines, fast absorbing",
       [("size", "volume")], (10, 70), ("hyaluronic acid", "retinol")),
    _t("lip balm", BEAUTY, "skin care",
       "moisturizing, spf 15, tinted, chapped lips, beeswax free, soothing",
       [("scent", "scent"), ("pack", "pack")], (3, 20), ("shea butter", "coconut oil")),
    _t("lipstick", BEAUTY, "makeup",
       "matte finish, transfer proof, creamy texture, highly pigmented, smudge proof, hydrating",
       [("shade", "shade")], (5, 35), ("vitamin e",)),
    _t("foundation", BEAUTY, "makeup",
       "full coverage, matte finish, oil free, buildable coverage, natural finish, spf 20",
       [("shade", "shade"), ("size", "volume")], (8, 50), ("mineral powder",)),
    _t("eyeshadow palette", BEAUTY, "makeup",
       "highly pigmented, blendable, shimmer finish, matte finish, mirror included, 18 colors",
       [("style", "palette")], (8, 45), ("pressed powder",)),
    _t("makeup brush set", BEAUTY, "makeup",
       "synthetic bristles, soft bristles, travel case, dense bristles, 14 pieces, easy to clean",
       [("color", "beauty_color")], (8, 40), ("wooden handle", "aluminum ferrule")),
    _t("nail polish", BEAUTY, "makeup",
       "quick dry, chip resistant, high shine, non toxic, gel effect, long wear",
       [("shade", "shade"), ("pack", "small_pack")], (4, 25), ()),
    # ---------------------------------------------------------------- grocery & gourmet food
    _t("protein bar", GROCERY, "snacks",
       "high protein, low sugar, keto friendly, individually wrapped, high fiber, meal replacement",
       [("flavor", "bar_flavor"), ("pack", "pack")], (10, 45), ("whey protein", "pea protein")),
    _t("potato chips", GROCERY, "snacks",
       "kettle cooked, family size, individually wrapped, thick cut, no artificial flavors, crunchy",
       [("flavor", "chip_flavor"), ("pack", "pack")], (3, 30), ("sunflower oil",), True),
    _t("trail mix", GROCERY, "snacks",
       "no added sugar, high protein, resealable bag, heart healthy, energy boosting, roasted nuts",
       [("flavor", "mix_flavor"), ("size", "food_weight")], (5, 30), ("almonds", "cashews")),
    _t("beef jerky", GROCERY, "snacks",
       "high protein, low fat, keto friendly, resealable bag, grass fed, small batch",
       [("flavor", "jerky_flavor"), ("size", "food_weight")], (8, 40), ()),
    _t("popcorn", GROCERY, "snacks",
       "whole grain, microwave, air popped, family size, movie theater, ready to eat",
       [("flavor", "chip_flavor"), ("pack", "pack")], (3, 25), ("coconut oil",)),
    _t("green tea", GROCERY, "beverages",
       "decaf, individually wrapped, antioxidant rich, loose leaf, tea bags, caffeine boost",
       [("flavor", "tea_flavor"), ("pack", "pack")], (4, 30), ()),
    _t("coffee beans", GROCERY, "beverages",
       "whole bean, fair trade, single origin, low acid, freshly roasted, smooth body",
       [("roast", "roast"), ("size", "food_weight")], (8, 45), ("arabica",), True),
    _t("sparkling water", GROCERY, "beverages",
       "zero calorie, no artificial sweeteners, naturally flavored, bpa free cans, caffeine free, zero sugar",
       [("flavor", "water_flavor"), ("pack", "pack")], (5, 30), ()),
    _t("olive oil", GROCERY, "pantry staples",
       "extra virgin, cold pressed, single origin, glass bottle, rich flavor, early harvest",
       [("size", "bottle"), ("pack", "small_pack")], (7, 45), ()),
    _t("peanut butter", GROCERY, "pantry staples",
       "no added sugar, high protein, no palm oil, no stir, salt free, natural spread",
       [("style", "butter_style"), ("size", "food_weight")], (3, 20), ()),
    _t("honey", GROCERY, "pantry staples",
       "raw, unfiltered, pure, squeeze bottle, local, unpasteurized",
       [("size", "food_weight")], (6, 35), ("wildflower", "clover")),
    _t("pasta sauce", GROCERY, "pantry staples",
       "no added sugar, low sodium, chunky, slow simmered, family recipe, vegetarian",
       [("flavor", "sauce_flavor"), ("pack", "pack")], (4, 25), ("tomato",)),
    _t("dark chocolate", GROCERY, "candy & chocolate",
       "70 percent cacao, fair trade, dairy free, individually wrapped, rich flavor, gift box",
       [("flavor", "chocolate_flavor"), ("pack", "pack")], (4, 30), ("cocoa butter",)),
    _t("gummy candy", GROCERY, "candy & chocolate",
       "fat free, individually wrapped, gelatin free, party size, chewy, real fruit juice",
       [("flavor", "gummy_flavor"), ("size", "food_weight")], (3, 25), ("pectin",)),
    # ---------------------------------------------------------------- clothing, shoes & jewelry
    _t("dress", FASHION, "women's clothing",
       "short sleeve, long sleeve, v neck, a line, knee length, pockets",
       [("color", "apparel_color"), ("size", "apparel_size")], (18, 70), ("chiffon", "cotton", "rayon")),
    _t("blouse", FASHION, "women's clothing",
       "button closure, long sleeve, v neck, loose fit, ruffle, office work",
       [("color", "apparel_color"), ("size", "apparel_size")], (14, 45), ("chiffon", "polyester")),
    _t("leggings", FASHION, "women's clothing",
       "high waist, tummy control, squat proof, pockets, ankle length, yoga",
       [("color", "apparel_color"), ("size", "apparel_size")], (12, 40), ("spandex", "nylon"), True),
    _t("cardigan", FASHION, "women's clothing",
       "open front, long sleeve, button closure, cable knit, pockets, oversized",
       [("color", "apparel_color"), ("size", "apparel_size")], (20, 60), ("acrylic", "wool blend")),
    _t("t-shirt", FASHION, "men's clothing",
       "short sleeve, crew neck, regular fit, tagless, classic fit, athletic",
       [("color", "apparel_color"), ("size", "apparel_size")], (8, 30), ("cotton", "polyester")),
    _t("jeans", FASHION, "men's clothing",
       "straight leg, stretch, button closure, zipper fly, five pocket, classic fit",
       [("color", "denim_color"), ("size", "waist_length")], (20, 70), ("denim", "cotton"), True),
    _t("hoodie", FASHION, "men's clothing",
       "pullover, fleece lined, kangaroo pocket, drawstring hood, long sleeve, heavyweight",
       [("color", "apparel_color"), ("size", "apparel_size")], (18, 60), ("fleece", "cotton")),
    _t("polo shirt", FASHION, "men's clothing",
       "short sleeve, button placket, classic fit, golf, ribbed collar, wrinkle resistant",
       [("color", "apparel_color"), ("size", "apparel_size")], (15, 50), ("pique cotton", "polyester")),
    _t("running shoes", FASHION, "shoes",
       "non slip, breathable mesh, arch support, rubber sole, lace up, cushioned",
       [("color", "apparel_color"), ("size", "shoe_size")], (30, 120), ("mesh", "knit"), True),
    _t("sandals", FASHION, "shoes",
       "open toe, adjustable strap, arch support, non slip, water friendly, flat",
       [("color", "apparel_color"), ("size", "shoe_size")], (15, 60), ("leather", "rubber"), True),
    _t("boots", FASHION, "shoes",
       "water resistant, ankle high, side zipper, rubber sole, faux fur lining, block heel",
       [("color", "apparel_color"), ("size", "shoe_size")], (35, 150), ("leather", "suede"), True),
    _t("slippers", FASHION, "shoes",
       "memory foam, non slip, fuzzy, indoor outdoor, slip on, warm",
       [("color", "apparel_color"), ("size", "shoe_size")], (10, 40), ("plush", "faux fur"), True),
    _t("backpack", FASHION, "accessories",
       "laptop compartment, water resistant, multiple pockets, padded straps, usb charging port, anti theft",
       [("color", "apparel_color")], (18, 80), ("nylon", "canvas")),
    _t("baseball cap", FASHION, "accessories",
       "adjustable strap, breathable, sun protection, embroidered, curved brim, unisex",
       [("color", "apparel_color")], (8, 30), ("cotton", "twill")),
    _t("sunglasses", FASHION, "accessories",
       "polarized, uv protection, lightweight frame, scratch resistant, oversized, unisex",
       [("color", "frame_color")], (10, 60), ("acetate", "metal"), True),
    _t("wrist watch", FASHION, "accessories",
       "water resistant, quartz movement, date display, leather band, luminous hands, minimalist",
       [("color", "frame_color")], (25, 150), ("stainless steel", "leather")),
    # ---------------------------------------------------------------- home & kitchen
    _t("office chair", HOME, "furniture",
       "ergonomic, lumbar support, adjustable height, swivel, breathable mesh, padded armrests",
       [("color", "home_color")], (60, 300), ("mesh", "faux leather")),
    _t("bookshelf", HOME, "furniture",
       "storage space, industrial, open shelves, anti tip, sturdy frame, display",
       [("color", "home_color"), ("size", "shelf_size")], (40, 200), ("engineered wood", "metal")),
    _t("coffee table", HOME, "furniture",
       "mid century, storage shelf, lift top, round, rustic, tempered glass top",
       [("color", "home_color")], (50, 250), ("solid wood", "engineered wood")),
    _t("bar stool", HOME, "furniture",
       "swivel, adjustable height, counter height, back support, footrest, upholstered",
       [("color", "home_color"), ("pack", "sets")], (40, 220), ("faux leather", "metal")),
    _t("tv stand", HOME, "furniture",
       "storage shelves, cable management, entertainment center, fits 65 inch tv, industrial, sliding doors",
       [("color", "home_color")], (60, 280), ("engineered wood", "metal")),
    _t("bed sheet set", HOME, "bedding",
       "deep pocket, breathable, wrinkle free, hypoallergenic, cooling, machine washable",
       [("color", "home_color"), ("size", "bed_size")], (20, 90), ("microfiber", "egyptian cotton")),
    _t("pillow", HOME, "bedding",
       "memory foam, side sleepers, cooling, hypoallergenic, adjustable loft, washable cover",
       [("size", "pillow_size"), ("pack", "small_pack")], (15, 70), ("shredded foam", "down alternative")),
    _t("comforter", HOME, "bedding",
       "all season, down alternative, machine washable, fluffy, corner tabs, quilted",
       [("color", "home_color"), ("size", "bed_size")], (30, 120), ("microfiber", "cotton")),
    _t("throw blanket", HOME, "bedding",
       "super soft, fleece, machine washable, sherpa, cozy, reversible",
       [("color", "home_color"), ("size", "blanket_size")], (15, 60), ("flannel", "sherpa")),
    _t("knife set", HOME, "kitchen & dining",
       "high carbon, knife block, dishwasher safe, ergonomic handle, razor sharp, full tang",
       [("color", "home_color")], (25, 200), ("stainless steel", "german steel")),
    _t("coffee mug", HOME, "kitchen & dining",
       "microwave safe, dishwasher safe, large capacity, insulated, lid, gift",
       [("color", "home_color"), ("capacity", "mug_capacity")], (8, 35), ("ceramic", "stainless steel")),
    _t("frying pan", HOME, "kitchen & dining",
       "non stick, induction compatible, oven safe, dishwasher safe, pfoa free, stay cool handle",
       [("color", "home_color"), ("size", "pan_size")], (15, 90), ("cast iron", "hard anodized aluminum")),
    _t("food storage containers", HOME, "kitchen & dining",
       "bpa free, airtight, leak proof, microwave safe, stackable, freezer safe",
       [("pack", "container_sets")], (12, 50), ("glass", "plastic"), True),
    _t("wall clock", HOME, "home decor",
       "silent, battery operated, large numbers, non ticking, farmhouse, decorative",
       [("color", "home_color"), ("size", "clock_size")], (12, 60), ("metal", "wood")),
    _t("table lamp", HOME, "home decor",
       "usb charging port, touch control, dimmable, bedside, warm light, nightstand",
       [("color", "home_color"), ("pack", "sets")], (18, 90), ("ceramic", "linen shade")),
    _t("curtains", HOME, "home decor",
       "blackout, thermal insulated, grommet top, light blocking, noise reducing, rod pocket",
       [("color", "home_color"), ("size", "curtain_size")], (15, 70), ("polyester", "linen"), True),
    _t("area rug", HOME, "home decor",
       "non shedding, washable, non slip backing, low pile, stain resistant, boho",
       [("color", "home_color"), ("size", "rug_size")], (25, 250), ("polypropylene", "jute")),
    # ---------------------------------------------------------------- electronics
    _t("phone case", ELEC, "cell phone accessories",
       "shockproof, slim, wireless charging compatible, drop protection, kickstand, clear back",
       [("color", "device_color"), ("model", "phone_model")], (8, 40), ("silicone", "tpu")),
    _t("screen protector", ELEC, "cell phone accessories",
       "tempered glass, bubble free, case friendly, easy installation, privacy, anti glare",
       [("model", "phone_model"), ("pack", "small_pack")], (6, 25), ("tempered glass",)),
    _t("charging cable", ELEC, "cell phone accessories",
       "fast charging, braided, usb c, data sync, tangle free, right angle",
       [("color", "device_color"), ("length", "cable_length")], (6, 30), ("nylon", "aluminum")),
    _t("wireless charger", ELEC, "cell phone accessories",
       "fast charging, led indicator, case friendly, 3 in 1, foldable, magnetic",
       [("color", "device_color")], (12, 60), ("aluminum", "silicone")),
    _t("bluetooth speaker", ELEC, "audio",
       "waterproof, portable, long battery life, deep bass, stereo pairing, outdoor",
       [("color", "device_color")], (20, 150), ("fabric", "rubber")),
    _t("wireless earbuds", ELEC, "audio",
       "noise cancelling, charging case, touch control, long battery life, sweat proof, in ear",
       [("color", "device_color")], (20, 180), (), True),
    _t("headphones", ELEC, "audio",
       "noise cancelling, over ear, foldable, built in microphone, long battery life, hi fi sound",
       [("color", "device_color")], (25, 250), ("memory protein", "aluminum"), True),
    _t("wireless mouse", ELEC, "computer accessories",
       "ergonomic, silent click, rechargeable, usb receiver, adjustable dpi, ambidextrous",
       [("color", "device_color")], (10, 60), ("abs plastic",)),
    _t("keyboard", ELEC, "computer accessories",
       "mechanical, backlit, wireless, quiet keys, rgb lighting, hot swappable",
       [("color", "device_color"), ("style", "keyboard_style")], (20, 150), ("aluminum", "abs plastic")),
    _t("usb hub", ELEC, "computer accessories",
       "plug and play, high speed, hdmi output, sd card reader, powered, individual switches",
       [("color", "device_color"), ("style", "hub_style")], (10, 60), ("aluminum", "abs plastic")),
    _t("laptop stand", ELEC, "computer accessories",
       "adjustable height, foldable, ventilated, ergonomic, non slip pads, portable",
       [("color", "device_color")], (15, 70), ("aluminum", "bamboo")),
    _t("hdmi cable", ELEC, "tv & video",
       "high speed, 4k, gold plated, braided, ethernet, 8k ready",
       [("length", "cable_length"), ("pack", "small_pack")], (6, 35), ("nylon", "copper")),
    _t("tripod", ELEC, "camera & photo",
       "phone holder, remote shutter, adjustable height, extendable, carrying bag, aluminum legs",
       [("color", "device_color"), ("size", "tripod_size")], (15, 90), ("aluminum", "carbon fiber")),
    _t("security camera", ELEC, "camera & photo",
       "night vision, motion detection, two way audio, 1080p, weatherproof, cloud storage",
       [("color", "device_color"), ("pack", "small_pack")], (25, 200), ()),
)

# Brand names: syllables × endings, split into one block per department.
_BRAND_HEADS = ("lu", "ve", "ka", "zo", "mi", "ar", "bel", "cor", "dax", "el", "fen", "gal", "hal",
                "iso", "jun", "kel", "lio", "mav", "nor", "ori", "pax", "quin", "ros", "sol", "tav",
                "ulm", "vio", "wex", "yar", "zen")
_BRAND_TAILS = ("ora", "ly", "ix", "ana", "ent", "ova", "ique", "io", "ara", "on")
BRANDS: tuple[str, ...] = tuple(h + t for h in _BRAND_HEADS for t in _BRAND_TAILS)
BRANDS_PER_DEPARTMENT = len(BRANDS) // len(DEPARTMENT_ATTRIBUTES)

# Sentences for features, descriptions and reviews ({a} = an attribute, {t} = the product type).
FEATURE_TEMPLATES: tuple[str, ...] = (
    "{A} - designed for everyday use and built to last",
    "{A} - a thoughtful detail you will notice from day one",
    "{A}: quality checked before it leaves our warehouse",
    "{A} for extra comfort and convenience",
    "{A} - loved by thousands of happy customers",
)
DESCRIPTION_TEMPLATES: tuple[str, ...] = (
    "this {t} is {a}, so it fits right into your routine.",
    "we designed our {t} to be {a} without compromise.",
    "made from {m}, it stays {a} use after use.",
    "whether at home or on the go, this {t} keeps things simple.",
    "a great gift idea for family and friends.",
    "every order is backed by our friendly customer service team.",
)
REVIEW_TEMPLATES: dict[int, tuple[str, ...]] = {
    5: ("love this {t}! it is {a} exactly as described.", "best {t} i have bought, would buy again."),
    4: ("very good {t}, {a} as promised. shipping took a while.", "nice quality for the money."),
    3: ("it is okay. {a} but smaller than i expected.", "average {t}, does the job."),
    2: ("not great. it was not as {a} as the listing says.", "disappointed with the quality."),
    1: ("returned it. the {t} arrived damaged.", "does not work as described."),
}
REVIEW_TITLES: dict[int, tuple[str, ...]] = {
    5: ("excellent", "highly recommend", "perfect"),
    4: ("pretty good", "good value", "happy with it"),
    3: ("it is fine", "mixed feelings", "okay"),
    2: ("meh", "could be better", "not as pictured"),
    1: ("do not buy", "waste of money", "broken"),
}
