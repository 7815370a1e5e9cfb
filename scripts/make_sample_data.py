#!/usr/bin/env python3
"""Write SemID Studio's bundled sample catalogue (``sample_data/``), deterministically.

The catalogue is synthetic but built from real English words so that a sentence encoder can
make sense of it, and the user histories follow a generative process with learnable structure
(taste profiles, product routines, product lines, popularity skew) plus noise. See
``sample_data/README.md`` for the process in plain words.

Output files (in ``--out``, default ``sample_data/``):

* ``items.jsonl``       item_id, title, brand, categories (department / category / product
                        type), price, description, and color / material where natural
* ``interactions.csv``  user_id,item_id,timestamp (unix seconds), sorted by user then time
* ``queries.csv``       query,item_id,split (train / test)

Determinism: every random draw comes from ``numpy.random.Generator.random()`` (uniform doubles
straight from the PCG64 bit generator, whose stream numpy keeps stable), never from methods
such as ``choice`` or ``normal`` whose algorithms numpy may change between releases. Each
stage (catalogue, users, queries) has its own stream, floats are rounded before they are
written, and all iteration is over ordered containers, so two runs with the same seed write
byte-identical files (``tests/test_sample_data.py`` checks this against the committed files).

Usage::

    python scripts/make_sample_data.py [--out sample_data] [--seed 20240611]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import numpy as np

DEFAULT_SEED = 20240611
N_ITEMS = 3000
N_USERS = 2000
# 2022-01-01 00:00:00 UTC .. 2024-01-01 00:00:00 UTC: the histories span two years
T_START = 1640995200
T_END = 1704067200
DAY = 86400

# --------------------------------------------------------------------------- taxonomy
#
# One block per department; "## Category -> Linked Category" starts a category (the link is
# where a routine continues once the category's own routine is done); then one product type a
# line, fields separated by "|":
#   singular | plural (leaf of the category path) | typical price in USD | query synonyms |
#   sizes or pack counts | materials ("-" for none) | features | variant kind | use phrase
# Product types inside a category are listed in *routine order*: the order in which people
# tend to buy them (tent -> sleeping bag -> sleeping pad -> stove -> lantern).

TAXONOMY = """
# Outdoors
## Camping -> Hiking
Tent|Tents|140|camping tent;backpacking tent;dome tent;tent|2-Person;3-Person;4-Person;6-Person|Nylon;Polyester;Canvas|Waterproof;Ultralight;Instant Setup;Four-Season|earth|for weekend camping trips
Sleeping Bag|Sleeping Bags|70|sleeping bag;mummy bag;camping sleeping bag|20 Degree;30 Degree;40 Degree;Kids|Down;Synthetic Fill;Flannel|Lightweight;Compressible;Double-Wide;Cold Weather|earth|for warm nights outdoors
Sleeping Pad|Sleeping Pads|45|sleeping pad;camping mattress;air mattress;camp mat|Regular;Long;Wide|Foam;Nylon|Inflatable;Self-Inflating;Ultralight;Insulated|earth|for a comfortable night in the tent
Camping Stove|Camping Stoves|55|camping stove;camp stove;backpacking stove;portable burner|Single Burner;Two Burner|Stainless Steel;Aluminum;Titanium|Compact;Propane;Windproof;Foldable|none|for cooking meals at camp
Camping Lantern|Camping Lanterns|30|camping lantern;led lantern;tent light;camp light|500 Lumen;1000 Lumen;Pack of 2|Plastic;Aluminum|Rechargeable;Solar;Collapsible;Waterproof|earth|for lighting up the campsite
## Hiking -> Camping
Hiking Boots|Hiking Boots|110|hiking boots;trail boots;walking boots;hiking shoes|Men's;Women's;Kids|Leather;Suede;Mesh|Waterproof;Mid-Cut;Lightweight;Insulated|earth|for rocky mountain trails
Hiking Backpack|Hiking Backpacks|90|hiking backpack;daypack;trekking pack;rucksack|20L;35L;50L;65L|Nylon;Ripstop Polyester|Lightweight;Ventilated;Hydration-Ready;Water-Resistant|earth|for day hikes and long treks
Trekking Poles|Trekking Poles|45|trekking poles;hiking poles;walking sticks|Pair;Single Pole|Aluminum;Carbon Fiber|Collapsible;Adjustable;Ultralight;Shock-Absorbing|earth|for steady footing on steep trails
Water Bottle|Water Bottles|25|water bottle;insulated bottle;hydration bottle;flask|500 ml;750 ml;1 Liter|Stainless Steel;Tritan Plastic;Glass|Insulated;Leakproof;BPA-Free;Wide-Mouth|color|for staying hydrated on the go
## Fishing -> Camping
Fishing Rod|Fishing Rods|60|fishing rod;fishing pole;spinning rod;casting rod|6 ft;7 ft;9 ft|Graphite;Carbon Fiber;Fiberglass|Telescopic;Spinning;Fly Fishing;Saltwater|none|for lakes, rivers and the sea
Fishing Reel|Fishing Reels|50|fishing reel;spinning reel;baitcasting reel;fly reel|1000 Size;2500 Size;4000 Size|Aluminum;Graphite|Spinning;Baitcasting;Smooth Drag;Saltwater|none|for smooth casting and strong drag
Fishing Lure Set|Fishing Lures|18|fishing lures;lure kit;fishing baits;crankbaits|12 Pieces;30 Pieces;56 Pieces|Soft Plastic;Metal;Wood|Bass;Trout;Topwater;Saltwater|none|for catching bass and trout
Tackle Box|Tackle Boxes|25|tackle box;tackle organizer;fishing box;tackle bag|Small;Medium;Large|Plastic;Canvas|Waterproof;Two-Tray;Portable;Three-Tray|earth|for keeping fishing gear organized
## Cycling -> Running
Bike Helmet|Bike Helmets|50|bike helmet;bicycle helmet;cycling helmet|Adult;Kids;Youth|Polycarbonate;Foam|Ventilated;Lightweight;MIPS;Road|color|for safe rides on road and trail
Bike Light Set|Bike Lights|28|bike lights;bicycle light;front and rear light;cycling light|400 Lumen;800 Lumen;1200 Lumen|Aluminum;Plastic|USB Rechargeable;Waterproof;Ultra Bright;Smart|none|for riding safely after dark
Bike Lock|Bike Locks|32|bike lock;u-lock;cable lock;chain lock|Standard;Long;Compact|Hardened Steel;Steel Cable|Heavy Duty;Combination;Keyed;Folding|color|for securing a bike in the city
Cycling Gloves|Cycling Gloves|22|cycling gloves;bike gloves;riding gloves|Small;Medium;Large;Kids|Lycra;Leather;Mesh|Padded;Half-Finger;Full-Finger;Touchscreen|color|for grip and comfort on long rides

# Kitchen & Dining
## Cookware -> Cutlery
Frying Pan|Frying Pans|40|frying pan;skillet;fry pan;saute pan|8 Inch;10 Inch;12 Inch|Cast Iron;Stainless Steel;Ceramic;Carbon Steel|Nonstick;Pre-Seasoned;Induction-Ready;Oven-Safe|none|for everyday searing and frying
Saucepan|Saucepans|35|saucepan;sauce pot;cooking pot|1.5 Quart;2 Quart;3 Quart|Stainless Steel;Copper;Hard-Anodized Aluminum|Nonstick;Tri-Ply;Induction-Ready;Lidded|none|for sauces, soups and grains
Dutch Oven|Dutch Ovens|80|dutch oven;casserole pot;braiser;stock pot|4 Quart;5.5 Quart;7 Quart|Enameled Cast Iron;Cast Iron|Enameled;Oven-Safe;Pre-Seasoned;Heavy|color|for slow braises and fresh bread
Baking Sheet|Baking Sheets|18|baking sheet;sheet pan;cookie sheet;baking tray|Half Sheet;Quarter Sheet;Set of 2;Set of 3|Aluminum;Carbon Steel;Stainless Steel|Nonstick;Rimmed;Warp-Resistant;Commercial|none|for roasting vegetables and baking cookies
## Coffee & Tea -> Small Appliances
Coffee Maker|Coffee Makers|80|coffee maker;coffee machine;drip coffee maker;espresso machine|4 Cup;12 Cup;Single Serve|Stainless Steel;Plastic;Glass|Programmable;Drip;Pour-Over;Thermal Carafe|tech|for a fresh pot every morning
Coffee Grinder|Coffee Grinders|40|coffee grinder;burr grinder;bean grinder|Compact;Standard|Stainless Steel;Ceramic|Burr;Electric;Manual;Adjustable|tech|for grinding beans fresh
Coffee Beans|Coffee Beans|15|coffee beans;whole bean coffee;ground coffee;coffee|12 oz;2 lb;5 lb|-|Organic;Fair Trade;Single Origin;Whole Bean|roast|for rich everyday brewing
Coffee Mug|Coffee Mugs|14|coffee mug;mug;travel mug;tea cup|12 oz;16 oz;Set of 4|Ceramic;Stoneware;Stainless Steel;Glass|Insulated;Handmade;Microwave-Safe;Double-Wall|neutral|for morning coffee and tea
Tea Kettle|Tea Kettles|35|tea kettle;electric kettle;kettle;stovetop kettle|1 Liter;1.7 Liter;2 Quart|Stainless Steel;Glass;Enamel|Electric;Whistling;Gooseneck;Temperature Control|neutral|for boiling water in minutes
## Cutlery -> Cookware
Chef Knife|Chef Knives|55|chef knife;kitchen knife;cooks knife;santoku knife|6 Inch;8 Inch;10 Inch|German Steel;Japanese Steel;Damascus Steel|Forged;Ultra-Sharp;Full-Tang;Ergonomic|none|for precise slicing and dicing
Knife Block Set|Knife Sets|110|knife set;knife block;cutlery set|8 Pieces;12 Pieces;15 Pieces|Stainless Steel;German Steel|Forged;Self-Sharpening;Magnetic;Professional|none|for a fully equipped kitchen
Cutting Board|Cutting Boards|25|cutting board;chopping board;butcher block|Small;Large;Set of 3|Bamboo;Acacia Wood;Plastic;Walnut|Reversible;Juice Groove;Dishwasher-Safe;Non-Slip|none|for chopping meat and vegetables
Knife Sharpener|Knife Sharpeners|20|knife sharpener;whetstone;sharpening stone;honing rod|Two-Stage;Three-Stage|Diamond;Ceramic;Whetstone|Manual;Electric;Professional;Compact|none|for keeping blades razor sharp
## Small Appliances -> Food Storage
Blender|Blenders|70|blender;smoothie maker;countertop blender;personal blender|Personal;48 oz;64 oz|Glass;BPA-Free Plastic;Stainless Steel|High-Speed;Quiet;Portable;Professional|tech|for smoothies, soups and shakes
Toaster|Toasters|40|toaster;toaster oven;bread toaster|2-Slice;4-Slice|Stainless Steel;Plastic|Wide-Slot;Retro;Digital;Bagel|neutral|for crisp toast and bagels
Air Fryer|Air Fryers|90|air fryer;air fryer oven;oilless fryer|4 Quart;6 Quart;8 Quart|Stainless Steel;Plastic|Digital;Dual-Basket;Compact;Programmable|tech|for crispy food with little oil
Stand Mixer|Stand Mixers|220|stand mixer;kitchen mixer;dough mixer|4.5 Quart;5 Quart;6 Quart|Die-Cast Metal;Stainless Steel|Tilt-Head;Bowl-Lift;Professional;10-Speed|neutral|for baking bread and cakes
## Food Storage -> Cookware
Food Storage Containers|Food Storage Containers|25|food containers;storage containers;meal prep containers;tupperware|Set of 10;Set of 20;Set of 24|Glass;BPA-Free Plastic;Stainless Steel|Airtight;Leakproof;Microwave-Safe;Stackable|none|for leftovers and meal prep
Lunch Box|Lunch Boxes|20|lunch box;bento box;lunch bag;lunch container|Kids;Adult;Two-Compartment|Stainless Steel;Insulated Fabric;Plastic|Insulated;Leakproof;Bento;Compact|bright|for school and office lunches
Mason Jars|Mason Jars|18|mason jars;glass jars;canning jars;storage jars|8 oz;16 oz;32 oz;Set of 12|Glass|Wide-Mouth;Regular-Mouth;Airtight;Canning|none|for canning, pickling and pantry storage

# Beauty & Personal Care
## Hair Care -> Skin Care
Shampoo|Shampoos|12|shampoo;hair shampoo;hair wash|8 fl oz;16 fl oz;33.8 fl oz;Pack of 2|-|Sulfate-Free;Moisturizing;Volumizing;Anti-Dandruff|scent|for clean, healthy hair
Conditioner|Conditioners|12|conditioner;hair conditioner;detangler|8 fl oz;16 fl oz;33.8 fl oz;Pack of 2|-|Sulfate-Free;Moisturizing;Repairing;Leave-In|scent|for soft, manageable hair
Hair Mask|Hair Masks|18|hair mask;deep conditioner;hair treatment|6 oz;8 oz;16 oz|-|Repairing;Keratin;Hydrating;Color-Safe|scent|for deep weekly repair
Hair Oil|Hair Oils|16|hair oil;argan oil;hair serum|2 fl oz;4 fl oz|-|Argan;Frizz Control;Lightweight;Heat Protecting|scent|for shine and frizz control
Hair Dryer|Hair Dryers|60|hair dryer;blow dryer;hairdryer;blowdryer|Compact;Full Size|Ceramic;Tourmaline|Ionic;Quiet;Travel;Diffuser|tech|for fast drying without frizz
## Skin Care -> Makeup
Facial Cleanser|Facial Cleansers|14|face wash;facial cleanser;cleansing gel;foaming cleanser|4 fl oz;6 fl oz;8 fl oz|-|Gentle;Foaming;Hydrating;Oil-Free|none|for a fresh, clean face
Toner|Toners|15|toner;face toner;facial toner|4 fl oz;8 fl oz|-|Alcohol-Free;Exfoliating;Soothing;Pore-Refining|none|for balanced, refreshed skin
Face Serum|Face Serums|28|face serum;vitamin c serum;hyaluronic acid serum;facial serum|1 fl oz;2 fl oz|-|Vitamin C;Hyaluronic Acid;Retinol;Niacinamide|none|for brighter, smoother skin
Moisturizer|Moisturizers|24|moisturizer;face cream;face lotion;night cream|1.7 oz;2.5 oz|-|Hydrating;Oil-Free;Night;Fragrance-Free|none|for soft skin all day
Sunscreen|Sunscreens|15|sunscreen;sunblock;spf lotion;face sunscreen|SPF 30;SPF 50;SPF 70|-|Mineral;Water-Resistant;Tinted;Lightweight|none|for protection from the sun
## Makeup -> Fragrance
Foundation|Foundations|30|foundation;liquid foundation;face makeup|1 fl oz;Travel Size|-|Matte;Full Coverage;Long-Wear;Dewy|shade|for an even, natural finish
Mascara|Mascaras|14|mascara;lash mascara;volumizing mascara|Standard;Mini|-|Waterproof;Volumizing;Lengthening;Smudge-Proof|none|for fuller, longer lashes
Lipstick|Lipsticks|16|lipstick;lip color;matte lipstick;lip stick|Single;Set of 3|-|Matte;Satin;Long-Lasting;Hydrating|shade|for bold, lasting color
Eyeshadow Palette|Eyeshadow Palettes|28|eyeshadow palette;eye shadow;eyeshadow|9 Shades;12 Shades;18 Shades|-|Shimmer;Matte;Neutral;Highly Pigmented|none|for everyday and evening looks
Makeup Brush Set|Makeup Brushes|22|makeup brushes;brush set;foundation brush|5 Pieces;10 Pieces;14 Pieces|Synthetic Bristle;Natural Hair;Bamboo|Vegan;Soft;Travel;Professional|color|for smooth, blended makeup
## Fragrance -> Skin Care
Eau de Parfum|Perfumes|75|perfume;eau de parfum;women's perfume;fragrance|1 fl oz;1.7 fl oz;3.4 fl oz|-|Floral;Woody;Fresh;Oriental;Citrus;Musk|none|with a long-lasting signature scent
Body Mist|Body Mists|14|body mist;body spray;fragrance mist|8 fl oz;Pack of 3|-|Floral;Fruity;Fresh;Light|scent|for a light everyday scent
Cologne|Colognes|65|cologne;men's cologne;eau de toilette;men's fragrance|1.7 fl oz;3.4 fl oz|-|Woody;Fresh;Spicy;Aquatic;Citrus;Leather|none|with a bold masculine scent
## Shaving -> Fragrance
Razor|Razors|18|razor;safety razor;men's razor;shaver|Handle + 4 Blades;Handle + 10 Blades|Chrome;Stainless Steel;Brass|5-Blade;Double-Edge;Sensitive;Refillable|none|for a close, smooth shave
Shaving Cream|Shaving Creams|9|shaving cream;shave gel;shaving foam;shave cream|6 oz;10 oz;Pack of 2|-|Sensitive Skin;Soothing;Rich Lather;Cooling|scent|for a comfortable, irritation-free shave
Aftershave Balm|Aftershave Balms|16|aftershave;aftershave balm;post shave lotion|3.4 fl oz;4.2 fl oz|-|Soothing;Alcohol-Free;Cooling;Moisturizing|scent|for calm skin after shaving
Beard Oil|Beard Oils|15|beard oil;beard conditioner;beard serum|1 fl oz;2 fl oz;Set of 3|-|Softening;Unscented;Conditioning;Organic|scent|for a soft, healthy beard

# Electronics
## Audio -> Phone Accessories
Wireless Headphones|Headphones|120|headphones;wireless headphones;over-ear headphones;bluetooth headphones|Over-Ear;On-Ear|-|Noise Cancelling;Foldable;Long Battery;Studio|tech|for music, calls and travel
Wireless Earbuds|Earbuds|70|earbuds;wireless earbuds;true wireless earphones;in-ear headphones|Standard;Sport Fit|-|Noise Cancelling;Waterproof;Sport;Compact|tech|for workouts and commuting
Bluetooth Speaker|Bluetooth Speakers|60|bluetooth speaker;portable speaker;wireless speaker|Mini;Portable;Party Size|-|Waterproof;Rugged;360 Sound;Bass Boost|tech|for music at home or outdoors
## Computer Accessories -> Phone Accessories
Mechanical Keyboard|Keyboards|80|mechanical keyboard;keyboard;gaming keyboard;wireless keyboard|Full Size;Tenkeyless;60 Percent|Aluminum;ABS Plastic|RGB Backlit;Wireless;Hot-Swappable;Quiet|tech|for fast, comfortable typing
Wireless Mouse|Computer Mice|28|wireless mouse;computer mouse;gaming mouse;ergonomic mouse|Standard;Compact|-|Ergonomic;Silent Click;Rechargeable;High-DPI|tech|for precise everyday control
Mouse Pad|Mouse Pads|12|mouse pad;desk mat;mousepad|Standard;XL;XXL|Cloth;Leather;Rubber|Non-Slip;Stitched Edges;Gaming;Wrist Rest|tech|for smooth mouse tracking
USB-C Hub|USB Hubs|35|usb c hub;usb hub;docking station;usb adapter|4-in-1;7-in-1;10-in-1|Aluminum|HDMI;Fast Charging;Slim;Portable|tech|for connecting more devices to a laptop
Laptop Stand|Laptop Stands|35|laptop stand;laptop riser;notebook stand|Standard;Large|Aluminum;Wood;Steel|Adjustable;Foldable;Ventilated;Portable|tech|for better posture at the desk
## Phone Accessories -> Audio
Phone Case|Phone Cases|18|phone case;phone cover;protective case;iphone case|6.1 Inch;6.7 Inch|Silicone;TPU;Leather|Shockproof;Slim;Clear;MagSafe|color|for protecting a phone from drops
Screen Protector|Screen Protectors|10|screen protector;tempered glass;screen guard|Pack of 2;Pack of 3|Tempered Glass;Film|Privacy;Anti-Glare;Bubble-Free;Case-Friendly|none|for scratch-free screens
Wireless Charger|Wireless Chargers|25|wireless charger;charging pad;charging stand;qi charger|10W;15W|-|Fast Charging;3-in-1;Foldable;Magnetic|tech|for charging without cables
Power Bank|Power Banks|30|power bank;portable charger;battery pack|10000mAh;20000mAh;26800mAh|-|Fast Charging;Slim;Solar;USB-C|tech|for charging on the go
## Cameras -> Phone Accessories
Action Camera|Action Cameras|200|action camera;sports camera;helmet camera;4k camera|4K;5K|-|Waterproof;Stabilized;Voice Control;Dual Screen|tech|for filming adventures
Memory Card|Memory Cards|20|memory card;sd card;micro sd card|64GB;128GB;256GB;512GB|-|High-Speed;4K Ready;Rugged;Pro|none|for storing photos and 4k video
Camera Tripod|Camera Tripods|35|tripod;camera tripod;phone tripod;travel tripod|50 Inch;60 Inch;72 Inch|Aluminum;Carbon Fiber|Lightweight;Flexible;Travel;Heavy Duty|tech|for steady photos and video
Camera Bag|Camera Bags|45|camera bag;camera backpack;camera case|Small;Medium;Large|Nylon;Canvas;Leather|Padded;Waterproof;Sling;Rolltop|earth|for carrying cameras and lenses
## Smart Home -> Lighting
Smart Plug|Smart Plugs|18|smart plug;wifi plug;smart outlet|Single;Pack of 2;Pack of 4|-|Energy Monitoring;Voice Control;Mini;Outdoor|none|for switching lights by voice
Smart Bulb|Smart Bulbs|15|smart bulb;wifi light bulb;color bulb|Single;Pack of 2;Pack of 4|-|Color Changing;Dimmable;Voice Control;Warm White|none|for dimming and color scenes
Video Doorbell|Video Doorbells|90|video doorbell;smart doorbell;doorbell camera|1080p;2K|-|Wireless;Night Vision;Two-Way Audio;Battery|tech|for seeing who is at the door
Security Camera|Security Cameras|60|security camera;home camera;wifi camera;outdoor camera|1080p;2K;4K|-|Indoor;Outdoor;Night Vision;Pan and Tilt|tech|for keeping an eye on home

# Home & Garden
## Bedding -> Bath
Bed Sheet Set|Bed Sheets|45|bed sheets;sheet set;bedding set;fitted sheet|Twin;Full;Queen;King|Cotton;Linen;Microfiber;Bamboo|Deep Pocket;Breathable;Wrinkle-Free;400 Thread Count|neutral|for cool, restful sleep
Pillow|Pillows|30|pillow;bed pillow;memory foam pillow;sleeping pillow|Standard;Queen;King;Set of 2|Memory Foam;Down Alternative;Feather|Cooling;Firm;Soft;Adjustable|none|for neck support through the night
Duvet Cover|Duvet Covers|55|duvet cover;comforter cover;quilt cover|Twin;Queen;King|Cotton;Linen;Microfiber|Button Closure;Washed;Reversible;Striped|neutral|for a fresh bedroom look
Throw Blanket|Throw Blankets|35|throw blanket;blanket;fleece throw;sofa blanket|50x60 Inch;60x80 Inch|Fleece;Knit Cotton;Sherpa;Wool|Cozy;Chunky Knit;Weighted;Reversible|neutral|for cozy evenings on the couch
## Bath -> Decor
Bath Towel Set|Bath Towels|35|bath towels;towel set;bath towel|Set of 2;Set of 4;Set of 6|Cotton;Turkish Cotton;Bamboo|Quick-Dry;Plush;Absorbent;Hotel Quality|neutral|for soft, fast drying after a shower
Bath Mat|Bath Mats|20|bath mat;bathroom rug;shower mat|17x24 Inch;20x32 Inch|Memory Foam;Cotton;Chenille;Diatomite|Non-Slip;Absorbent;Machine-Washable;Quick-Dry|neutral|for a dry, soft bathroom floor
Shower Curtain|Shower Curtains|22|shower curtain;bath curtain;curtain liner|72x72 Inch;Extra Long|Polyester;Cotton;PEVA|Waterproof;Waffle Weave;Mildew-Resistant;Patterned|neutral|for a fresh bathroom look
Bathrobe|Bathrobes|45|bathrobe;robe;spa robe;dressing gown|Small;Medium;Large|Cotton;Terry;Waffle;Plush Fleece|Lightweight;Hooded;Plush;Hotel|neutral|for warm mornings at home
## Decor -> Lighting
Scented Candle|Scented Candles|18|scented candle;candle;jar candle;soy candle|8 oz;14 oz;Set of 3|Soy Wax;Beeswax;Coconut Wax|Long-Burning;Hand-Poured;Three-Wick;Natural|scent|for a calm, fragrant room
Picture Frame|Picture Frames|16|picture frame;photo frame;frame|4x6 Inch;5x7 Inch;8x10 Inch;Set of 6|Wood;Metal;Glass|Gallery;Rustic;Modern;Collage|neutral|for displaying family photos
Vase|Vases|28|vase;flower vase;ceramic vase|Small;Medium;Tall|Ceramic;Glass;Stoneware|Modern;Rustic;Minimalist;Handmade|neutral|for fresh flowers and dried stems
Throw Pillow Cover|Throw Pillow Covers|15|throw pillow covers;cushion covers;pillow cases;decorative pillows|18x18 Inch;20x20 Inch;Set of 2;Set of 4|Velvet;Linen;Cotton|Decorative;Boho;Striped;Textured|neutral|for refreshing a sofa
Wall Clock|Wall Clocks|30|wall clock;clock;kitchen clock|10 Inch;12 Inch;16 Inch|Wood;Metal;Glass|Silent;Modern;Vintage;Farmhouse|neutral|for a stylish living room wall
## Lighting -> Smart Home
Table Lamp|Table Lamps|45|table lamp;desk lamp;bedside lamp;nightstand lamp|Small;Medium;Set of 2|Ceramic;Metal;Glass;Wood|Dimmable;Touch Control;USB Port;Modern|neutral|for warm bedside light
Floor Lamp|Floor Lamps|70|floor lamp;standing lamp;arc lamp;torchiere|58 Inch;65 Inch;72 Inch|Metal;Wood;Brass|Dimmable;Arc;Tripod;LED|neutral|for bright living room corners
LED Light Bulbs|LED Bulbs|14|led bulbs;light bulbs;led light bulb;energy saving bulbs|Pack of 4;Pack of 8;Pack of 12|-|Dimmable;Daylight;Warm White;Energy Saving|none|for efficient bright lighting
String Lights|String Lights|18|string lights;fairy lights;patio lights;twinkle lights|25 ft;50 ft;100 ft|Copper Wire;Plastic|Solar;Waterproof;Remote Control;Warm White|none|for cozy patio evenings
## Gardening -> Birds
Garden Hose|Garden Hoses|35|garden hose;water hose;expandable hose|25 ft;50 ft;100 ft|Rubber;Vinyl;Latex|Expandable;Kink-Free;Heavy Duty;Lightweight|earth|for watering lawns and gardens
Pruning Shears|Pruning Shears|20|pruning shears;garden shears;secateurs;hand pruners|Small;Standard|Stainless Steel;Carbon Steel|Bypass;Ergonomic;Heavy Duty;Anvil|earth|for trimming plants and branches
Plant Pot|Plant Pots|22|plant pot;planter;flower pot;indoor planter|6 Inch;8 Inch;12 Inch;Set of 3|Ceramic;Terracotta;Plastic;Concrete|Drainage Hole;Self-Watering;Modern;Hanging|neutral|for indoor plants and herbs
Garden Gloves|Garden Gloves|12|garden gloves;gardening gloves;work gloves|Small;Medium;Large;Kids|Leather;Nitrile;Cotton|Thorn-Proof;Breathable;Waterproof;Touchscreen|color|for thorny roses and muddy work
Watering Can|Watering Cans|20|watering can;watering pot;plant watering can|1 Gallon;2 Gallon;Kids|Galvanized Steel;Plastic;Copper|Long Spout;Removable Rose;Indoor;Vintage|color|for watering flowers and seedlings

# Pet Supplies
## Dogs -> Cats
Dry Dog Food|Dog Food|45|dog food;dry dog food;kibble;puppy food|5 lb;15 lb;30 lb|-|Grain-Free;High-Protein;Puppy;Senior|flavor|for healthy, happy dogs
Dog Treats|Dog Treats|12|dog treats;dog biscuits;training treats;dog chews|6 oz;16 oz;32 oz|-|Training;Dental;Natural;Soft|flavor|for training and rewards
Dog Chew Toy|Dog Toys|11|dog toy;chew toy;squeaky toy;tug toy|Small;Medium;Large;Pack of 3|Rubber;Rope;Plush;Nylon|Durable;Squeaky;Treat-Dispensing;Interactive|bright|for chewing and playtime
Dog Leash|Dog Leashes|18|dog leash;dog lead;retractable leash;training leash|4 ft;6 ft;16 ft|Nylon;Leather;Rope|Reflective;Retractable;Padded Handle;Hands-Free|color|for safe daily walks
Dog Bed|Dog Beds|50|dog bed;pet bed;orthopedic dog bed;dog crate mat|Small;Medium;Large;XL|Memory Foam;Plush;Canvas|Orthopedic;Washable;Calming;Waterproof|neutral|for deep, restful naps
## Cats -> Dogs
Dry Cat Food|Cat Food|30|cat food;dry cat food;kitten food;cat kibble|3 lb;7 lb;16 lb|-|Indoor;Grain-Free;Kitten;Hairball Control|flavor|for healthy indoor cats
Cat Litter|Cat Litter|20|cat litter;clumping litter;kitty litter|10 lb;20 lb;40 lb|Clay;Pine;Tofu;Silica|Clumping;Unscented;Low Dust;Odor Control|none|for odor-free litter boxes
Cat Toy|Cat Toys|8|cat toy;feather wand;catnip toy;cat teaser|Single;Pack of 5;Pack of 12|Feather;Plush;Plastic|Interactive;Catnip;Motion;Crinkle|bright|for playful indoor cats
Cat Scratching Post|Scratching Posts|35|scratching post;cat scratcher;scratch pad|24 Inch;32 Inch;Flat Pad|Sisal;Cardboard;Carpet|Tall;Sturdy;Corner;Refillable|neutral|for saving the furniture
Cat Tree|Cat Trees|80|cat tree;cat tower;cat condo;cat furniture|48 Inch;60 Inch;72 Inch|Plush;Sisal;Wood|Multi-Level;Hammock;Modern;Sturdy|neutral|for climbing, perching and naps
## Aquarium -> Birds
Aquarium Tank|Aquariums|90|aquarium;fish tank;aquarium kit;tank|5 Gallon;10 Gallon;20 Gallon;40 Gallon|Glass;Acrylic|Starter Kit;LED Lighting;Nano;Curved|none|for tropical fish at home
Aquarium Filter|Aquarium Filters|35|aquarium filter;fish tank filter;canister filter|10 Gallon;30 Gallon;75 Gallon|-|Hang-On;Canister;Sponge;Quiet|none|for clean, clear tank water
Aquarium Heater|Aquarium Heaters|25|aquarium heater;fish tank heater;submersible heater|50W;100W;200W|Glass;Titanium|Submersible;Adjustable;Digital;Shatterproof|none|for steady water temperature
Fish Food|Fish Food|8|fish food;fish flakes;fish pellets|1 oz;2.2 oz;7 oz|-|Tropical;Goldfish;Betta;Sinking|none|for colorful, healthy fish
## Birds -> Gardening
Bird Cage|Bird Cages|70|bird cage;parakeet cage;birdcage;flight cage|Small;Medium;Large|Wrought Iron;Metal Wire|Rolling Stand;Flight;Play Top;Easy Clean|neutral|for parakeets and cockatiels
Bird Seed|Bird Seed|14|bird seed;wild bird food;birdseed|5 lb;10 lb;20 lb|-|Wild Bird;Parakeet;No-Mess;Sunflower|none|for feeding wild and pet birds
Bird Feeder|Bird Feeders|25|bird feeder;hanging feeder;hummingbird feeder|Small;Large;Window|Metal;Wood;Glass;Plastic|Squirrel-Proof;Hanging;Window;Hummingbird|earth|for watching birds in the garden

# Sports & Fitness
## Yoga -> Strength Training
Yoga Mat|Yoga Mats|35|yoga mat;exercise mat;fitness mat|4mm;6mm;Extra Thick|TPE;Natural Rubber;Cork;PVC|Non-Slip;Eco-Friendly;Extra Wide;Travel|color|for yoga, pilates and stretching
Yoga Block|Yoga Blocks|14|yoga block;yoga brick;foam block|Single;Set of 2|EVA Foam;Cork;Bamboo|Lightweight;Non-Slip;Sturdy;Eco-Friendly|color|for support in deep poses
Yoga Strap|Yoga Straps|10|yoga strap;stretching strap;yoga belt|6 ft;8 ft;10 ft|Cotton;Nylon|D-Ring;Loop;Adjustable;Durable|color|for deeper stretches
Foam Roller|Foam Rollers|22|foam roller;massage roller;muscle roller|12 Inch;18 Inch;36 Inch|EVA Foam;EPP Foam|High-Density;Textured;Vibrating;Soft|color|for post-workout recovery
Meditation Cushion|Meditation Cushions|35|meditation cushion;zafu;floor cushion;meditation pillow|Standard;Large;Set of 2|Cotton;Buckwheat Hull;Velvet|Round;Crescent;Washable Cover;Portable|neutral|for comfortable seated meditation
## Strength Training -> Running
Dumbbell Set|Dumbbells|90|dumbbells;dumbbell set;hand weights;free weights|10 lb Pair;20 lb Pair;50 lb Set;Adjustable 52.5 lb|Cast Iron;Neoprene;Rubber|Adjustable;Hex;Coated;With Rack|color|for strength workouts at home
Kettlebell|Kettlebells|45|kettlebell;kettle bell;competition kettlebell|15 lb;25 lb;35 lb;45 lb|Cast Iron;Vinyl;Steel|Powder-Coated;Adjustable;Competition;Wide Handle|color|for swings and full-body training
Resistance Bands|Resistance Bands|20|resistance bands;exercise bands;loop bands;workout bands|Set of 5;Set of 11|Latex;Fabric|Heavy Duty;Loop;Handles;Non-Slip|bright|for workouts anywhere
Weight Bench|Weight Benches|150|weight bench;workout bench;adjustable bench|Standard;Heavy Duty|Steel|Adjustable;Foldable;Incline Decline;Flat|none|for presses and rows at home
Workout Gloves|Workout Gloves|18|workout gloves;gym gloves;lifting gloves|Small;Medium;Large|Leather;Neoprene;Mesh|Padded;Wrist Wrap;Full-Finger;Breathable|color|for a firm grip when lifting
## Running -> Audio
Running Shoes|Running Shoes|110|running shoes;sneakers;trainers;jogging shoes|Men's;Women's;Kids|Mesh;Knit|Cushioned;Lightweight;Trail;Stability|color|for daily training runs
Running Socks|Running Socks|15|running socks;athletic socks;sport socks|Pack of 3;Pack of 6|Merino Wool;Polyester;Bamboo|Cushioned;No-Show;Compression;Moisture-Wicking|color|for blister-free miles
Running Shorts|Running Shorts|30|running shorts;athletic shorts;gym shorts|Men's;Women's|Polyester;Nylon Spandex|Lightweight;Zip Pocket;Lined;Quick-Dry|color|for hot weather runs
Fitness Tracker|Fitness Trackers|80|fitness tracker;activity tracker;smart watch;step counter|Small;Large|-|Heart Rate;GPS;Waterproof;Sleep Tracking|tech|for tracking steps, heart rate and sleep
Running Belt|Running Belts|18|running belt;waist pack;phone belt;fanny pack|One Size|Lycra;Neoprene|Reflective;Bounce-Free;Water-Resistant;Slim|color|for carrying a phone and keys on runs
## Team Sports -> Racket Sports
Soccer Ball|Soccer Balls|25|soccer ball;football;match ball;training ball|Size 3;Size 4;Size 5|Synthetic Leather;Rubber|Match;Training;Indoor;Official|bright|for practice and weekend matches
Basketball|Basketballs|28|basketball;indoor basketball;outdoor basketball|Size 5;Size 6;Size 7|Composite Leather;Rubber|Indoor;Outdoor;Official;Grip|none|for pickup games and practice
Shin Guards|Shin Guards|15|shin guards;shin pads;soccer shin guards|Small;Medium;Large;Kids|Plastic;Foam|Lightweight;Ankle Protection;Slip-In;Strap|bright|for protection in soccer games
Sports Duffel Bag|Sports Bags|35|sports bag;duffel bag;gym bag;team bag|40L;60L|Polyester;Nylon;Canvas|Shoe Compartment;Water-Resistant;Foldable;Wet Pocket|color|for carrying gear to practice
## Racket Sports -> Team Sports
Tennis Racket|Tennis Rackets|90|tennis racket;tennis racquet;racquet|Adult;Junior 25 Inch;Kids|Graphite;Aluminum|Pre-Strung;Lightweight;Oversize;Control|color|for club and weekend tennis
Tennis Balls|Tennis Balls|8|tennis balls;practice balls;pressurized balls|Can of 3;Pack of 12;Bucket of 60|-|Extra Duty;Regular Duty;Pressureless;Championship|none|for practice and matches
Pickleball Paddle|Pickleball Paddles|60|pickleball paddle;pickleball set;paddle|Single;Set of 2;Set of 4|Graphite;Fiberglass;Wood|Lightweight;Carbon Face;Wide Body;Cushion Grip|color|for fast, fun pickleball games
Badminton Set|Badminton Sets|40|badminton set;badminton rackets;shuttlecocks|2 Player;4 Player|Aluminum;Steel;Carbon Fiber|Backyard;With Net;Portable;Professional|bright|for backyard games with family

# Toys & Games
## Building Toys -> Board Games
Building Blocks Set|Building Blocks|35|building blocks;bricks set;construction toy;building set|100 Pieces;500 Pieces;1000 Pieces|Plastic;Wood|Classic;STEM;Creative;City|bright|for creative builders ages 4 and up
Magnetic Tiles|Magnetic Tiles|45|magnetic tiles;magnet blocks;magnetic building set|32 Pieces;60 Pieces;100 Pieces|ABS Plastic|Translucent;STEM;Educational;Glow|bright|for building towers and castles
Marble Run|Marble Runs|40|marble run;marble maze;marble track|80 Pieces;150 Pieces;250 Pieces|Plastic;Wood|STEM;Glow-in-the-Dark;Motorized;Expandable|bright|for hours of building fun
Wooden Train Set|Train Sets|40|train set;wooden train;toy train;railway set|50 Pieces;80 Pieces;100 Pieces|Wood;Beech Wood|Classic;Battery-Powered;Figure-Eight;Expandable|none|for little engineers
## Board Games -> Arts & Crafts
Strategy Board Game|Strategy Games|40|board game;strategy game;family board game|2-4 Players;2-6 Players|Cardboard;Wood|Strategy;Cooperative;Family;Party|none|for game nights with friends
Card Game|Card Games|15|card game;party game;deck game|2-6 Players;3-8 Players|Cardstock|Party;Family;Quick;Word|none|for quick laughs at parties
Jigsaw Puzzle|Jigsaw Puzzles|18|jigsaw puzzle;puzzle;1000 piece puzzle|300 Pieces;500 Pieces;1000 Pieces;2000 Pieces|Cardboard;Wood|Landscape;Animal;Art;Challenging|none|for relaxing evenings
Chess Set|Chess Sets|35|chess set;chess board;chess game|12 Inch;15 Inch;Travel|Wood;Glass;Marble|Folding;Magnetic;Tournament;Handcrafted|none|for classic strategy at home
## Arts & Crafts -> Building Toys
Crayons|Crayons|6|crayons;crayon set;coloring crayons|24 Count;64 Count;120 Count|Wax;Beeswax|Washable;Jumbo;Non-Toxic;Twistable|none|for coloring at home and school
Watercolor Paint Set|Paint Sets|20|watercolor set;paint set;watercolors;paints for kids|12 Colors;24 Colors;48 Colors|-|Washable;Professional;Portable;Metallic|none|for painting pictures and cards
Modeling Clay|Modeling Clay|12|modeling clay;play dough;air dry clay;clay set|12 Colors;24 Colors;36 Colors|Air-Dry Clay;Polymer Clay;Dough|Non-Toxic;Soft;Air-Dry;With Tools|none|for sculpting and crafting
Sketchbook|Sketchbooks|12|sketchbook;drawing pad;sketch pad|5.5x8.5 Inch;9x12 Inch;Pack of 2|Acid-Free Paper;Mixed Media Paper|Spiral;Hardcover;Thick Paper;Travel|color|for sketching and doodling
Craft Kit|Craft Kits|22|craft kit;diy kit;art kit;craft set|Small;Large;Party Pack|Felt;Beads;Yarn|DIY;Jewelry Making;Friendship Bracelet;Sewing|bright|for rainy-day projects with kids
## Outdoor Play -> Team Sports
Kite|Kites|18|kite;kite for kids;beach kite|Small;Large;Delta|Ripstop Nylon;Polyester|Easy Fly;Rainbow;Stunt;Giant|bright|for windy days at the beach
Water Blaster|Water Blasters|15|water gun;water blaster;squirt gun;water pistol|Single;Pack of 2;Pack of 4|Plastic;Foam|Long Range;Pump-Action;Quick-Fill;Mini|bright|for summer backyard battles
Jump Rope|Jump Ropes|10|jump rope;skipping rope;speed rope|Kids;Adult;Adjustable|PVC;Cotton;Beaded|Speed;Weighted;Tangle-Free;Counter|bright|for fitness and playground fun
Bubble Machine|Bubble Machines|22|bubble machine;bubble maker;bubble blower|Small;Large|Plastic|Automatic;Battery-Powered;Portable;Rechargeable|bright|for parties and backyard fun
Kids Scooter|Kids Scooters|60|kids scooter;scooter;kick scooter|3-Wheel;2-Wheel|Aluminum;Steel|Foldable;Light-Up Wheels;Adjustable;Lean-to-Steer|bright|for rides around the block
## Dolls & Figures -> Arts & Crafts
Fashion Doll|Dolls|20|doll;fashion doll;baby doll|11 Inch;14 Inch;18 Inch|Vinyl;Soft Cloth|Fashion;Baby;Pretend Play;Collectible|none|for imaginative pretend play
Action Figure|Action Figures|18|action figure;superhero figure;toy figure|4 Inch;7 Inch;12 Inch;Set of 5|Plastic;PVC|Articulated;Collectible;Light-Up;Battle|none|for epic imaginary battles
Plush Toy|Plush Toys|16|plush toy;stuffed animal;teddy bear;plushie|8 Inch;12 Inch;20 Inch|Plush;Cotton;Velvet|Soft;Cuddly;Weighted;Jumbo|bright|for cuddles at bedtime
Dollhouse|Dollhouses|90|dollhouse;doll house;play house|2 Story;3 Story|Wood;Plastic|Furnished;Light-Up;Modern;Victorian|none|for hours of pretend play
"""

# Variant palettes. Colour-like kinds become the item's "color" field; scents, flavours,
# roasts and shades only appear in the title (and in queries).
VARIANTS = {
    "color": ["Black", "White", "Gray", "Navy Blue", "Red", "Royal Blue", "Green", "Orange", "Teal", "Purple", "Pink", "Yellow"],
    "earth": ["Forest Green", "Olive", "Sand", "Charcoal", "Burnt Orange", "Navy", "Slate Blue", "Khaki", "Black"],
    "bright": ["Red", "Blue", "Yellow", "Green", "Pink", "Purple", "Orange", "Rainbow", "Sky Blue"],
    "neutral": ["White", "Ivory", "Light Gray", "Charcoal", "Sage Green", "Navy", "Blush Pink", "Beige", "Terracotta"],
    "tech": ["Black", "White", "Silver", "Space Gray", "Midnight Blue", "Rose Gold", "Graphite"],
    "scent": ["Lavender", "Coconut", "Citrus", "Unscented", "Peppermint", "Vanilla", "Rose", "Eucalyptus", "Sandalwood"],
    "flavor": ["Chicken", "Salmon", "Beef", "Lamb & Rice", "Turkey", "Duck", "Whitefish"],
    "roast": ["Light Roast", "Medium Roast", "Dark Roast", "Espresso Roast", "Decaf"],
    "shade": ["Ruby Red", "Nude Beige", "Coral", "Berry", "Mocha", "Rose Pink", "Ivory", "Warm Sand", "Honey"],
    "none": [],
}
COLOR_KINDS = {"color", "earth", "bright", "neutral", "tech"}
# last words of product names that are uncountable ("Cat Litter", not "a cat litter")
MASS_NOUNS = {"Litter", "Food", "Seed", "Clay", "Sunscreen", "Shampoo", "Conditioner", "Mascara", "Foundation"}

# Features that exclude each other: a product has at most one of each group.
EXCLUSIVE_FEATURES = [
    {"Manual", "Electric"}, {"Half-Finger", "Full-Finger"}, {"Indoor", "Outdoor"},
    {"Spinning", "Baitcasting", "Fly Fishing"}, {"Bass", "Trout", "Saltwater"}, {"Matte", "Shimmer", "Dewy", "Satin"},
    {"Wide-Mouth", "Regular-Mouth"}, {"Firm", "Soft"}, {"Extra Duty", "Regular Duty", "Pressureless"},
    {"Daylight", "Warm White", "Color Changing"}, {"Tilt-Head", "Bowl-Lift"}, {"Hanging", "Window"},
    {"Hang-On", "Canister", "Sponge"}, {"Round", "Crescent"}, {"Flat", "Incline Decline", "Adjustable"},
    {"Fashion", "Baby"}, {"Puppy", "Senior"}, {"Kitten", "Indoor"}, {"Tropical", "Goldfish", "Betta"},
    {"Bypass", "Anvil"}, {"Keyed", "Combination"}, {"Drip", "Pour-Over"}, {"Trail", "Road"},
    {"Wild Bird", "Parakeet"}, {"Modern", "Vintage", "Rustic", "Victorian", "Farmhouse", "Retro", "Boho"},
    {"Floral", "Woody", "Fresh", "Oriental", "Citrus", "Musk", "Spicy", "Aquatic", "Leather", "Fruity", "Light"},
    {"Two-Tray", "Three-Tray"}, {"Single Origin", "Fair Trade"}, {"Mid-Cut", "Lightweight"},
    {"Propane", "Compact"}, {"Solar", "Rechargeable", "USB Rechargeable"}, {"Wireless", "Battery"},
]

# Brands: name | price tier (0 budget, 1 mid, 2 premium) | what they make: categories, or
# "Category:Product Type" for a brand that only makes one type there. Seven brands span two
# departments (NorthPeak and Velocity: Outdoors + Sports, Oak & Ember: Kitchen + Home,
# VoltEdge: Electronics + Sports, Greenthumb: Home + Pets, Kickstart: Sports + Toys,
# Nestwise: Electronics + Home).
BRANDS = """
Trailcraft|1|Camping;Hiking;Fishing
Summit Ridge|2|Camping;Hiking
Campfire Co|0|Camping;Fishing;Cycling
NorthPeak|2|Hiking;Cycling;Running;Yoga:Yoga Mat
RiverBend|1|Fishing;Camping
Velocity|1|Cycling;Running:Running Shoes;Running:Running Shorts
Copper Hearth|2|Cookware;Cutlery;Coffee & Tea
Kitchenly|0|Cookware;Small Appliances;Food Storage;Cutlery
Oak & Ember|1|Cutlery;Cookware;Decor;Bedding:Throw Blanket
BrewHouse|1|Coffee & Tea;Small Appliances:Blender
FreshKeep|0|Food Storage;Coffee & Tea:Coffee Mug
Whirlton|2|Small Appliances;Coffee & Tea:Coffee Maker
Lumina|2|Skin Care;Makeup;Fragrance
Pure Botanics|1|Hair Care;Skin Care;Shaving
Glow Theory|1|Makeup;Skin Care
Barber & Sons|1|Shaving;Hair Care;Fragrance:Cologne
Velvet Rose|2|Fragrance;Makeup;Hair Care
DailyCare|0|Hair Care;Skin Care;Shaving
VoltEdge|1|Phone Accessories;Computer Accessories;Smart Home;Running:Fitness Tracker
Sonique|2|Audio
ByteGear|0|Computer Accessories;Phone Accessories;Audio
Pixelline|1|Cameras;Phone Accessories:Phone Case
Aperture Lab|2|Cameras
Nestwise|1|Smart Home;Lighting
Cozy Nest|0|Bedding;Bath;Decor
Linen Lane|2|Bedding;Bath
Bright Haven|1|Lighting;Decor
Greenthumb|1|Gardening;Birds:Bird Feeder
Rootwell|0|Gardening
Happy Paws|1|Dogs;Cats
Whisker Works|2|Cats
Pawsome|0|Dogs;Cats;Birds;Aquarium
Fetch & Co|2|Dogs
Aqua Haven|1|Aquarium
Wild Wings|1|Birds
IronCore|1|Strength Training;Team Sports
Zen Flow|1|Yoga
Stride|2|Running
ProServe|1|Racket Sports;Team Sports
Kickstart|0|Team Sports;Strength Training;Yoga;Racket Sports;Outdoor Play
BrightBlocks|1|Building Toys;Board Games
Funfolk|0|Outdoor Play;Dolls & Figures;Arts & Crafts;Board Games
Little Artist|1|Arts & Crafts
Wonder Works|2|Building Toys;Dolls & Figures;Board Games
"""

# Names for product lines (a brand's series across the product types of one category).
LINE_NAMES = [
    "Alpine", "Basecamp", "Hydra Bloom", "Silk Repair", "Pro Series", "Heritage", "Everyday",
    "Urban", "Coastal", "Zenith", "Aurora", "Nordic", "Terra", "Cascade", "Evergreen", "Luxe",
    "Essentials", "Momentum", "Meadow", "Harbor", "Ember", "Sierra", "Driftwood", "Solstice",
    "Pure Glow", "Iron Forge", "Little Explorer", "Starlight", "Velocity X", "Wildflower",
    "Copperline", "Moonstone", "Trailhead", "Bluebird", "Horizon", "Maple", "Quartz", "Tidal",
    "Granite", "Willow", "Sunrise", "Atlas", "Juniper", "Orchard", "Pinnacle", "Summit Pro",
    "Redwood", "Lagoon", "Prairie", "Comet", "Frontier", "Velvet Touch", "Timberline", "Saffron",
    "Glacier", "Canyon", "Nimbus", "Fjord", "Riverstone", "Daybreak", "Hearthside", "Lumen",
    "Wildwood", "Skyline", "Caramel", "Monarch", "Seaside", "Oakridge", "Polaris", "Ironwood",
    "Bramble", "Citrine", "Voyager", "Halcyon", "Kestrel", "Marigold",
]
PRICE_WORDS = {0: ["cheap", "budget", "affordable", "inexpensive"], 2: ["premium", "luxury", "high end", "best"]}
BAND_NAMES = ["budget", "mid-range", "premium"]


# --------------------------------------------------------------------------- randomness


class Rand:
    """Random draws built only on ``Generator.random()`` (see the module docstring for why)."""

    def __init__(self, seed: int, stream: int) -> None:
        self._gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))
        self._buf = np.empty(0)
        self._pos = 0

    def uniform(self) -> float:
        # drawing in blocks is much faster than one call per number and yields the same stream
        if self._pos >= len(self._buf):
            self._buf = self._gen.random(4096)
            self._pos = 0
        value = float(self._buf[self._pos])
        self._pos += 1
        return value

    def chance(self, p: float) -> bool:
        return self.uniform() < p

    def index(self, n: int) -> int:
        return min(int(self.uniform() * n), n - 1)

    def pick(self, seq):
        return seq[self.index(len(seq))]

    def weighted_index(self, weights) -> int:
        cum = list(accumulate(weights))
        return min(bisect.bisect_right(cum, self.uniform() * cum[-1]), len(cum) - 1)

    def weighted(self, seq, weights):
        return seq[self.weighted_index(weights)]

    def normal(self) -> float:
        u1, u2 = 1.0 - self.uniform(), self.uniform()  # Box-Muller; 1-u avoids log(0)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.normal())

    def exponential(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.uniform())

    def shuffled(self, seq) -> list:
        out = list(seq)
        for i in range(len(out) - 1, 0, -1):  # Fisher-Yates
            j = self.index(i + 1)
            out[i], out[j] = out[j], out[i]
        return out

    def sample(self, seq, k: int) -> list:
        return self.shuffled(seq)[:k]


# --------------------------------------------------------------------------- catalogue model


@dataclass
class ProductType:
    index: int
    name: str
    plural: str
    price: float
    synonyms: list[str]
    sizes: list[str]
    materials: list[str]
    features: list[str]
    variant_kind: str
    use: str
    department: str
    category: str
    position: int  # position in the category's routine
    popularity: float = 1.0
    items: list[int] = field(default_factory=list)


@dataclass
class Category:
    name: str
    department: str
    link: str
    types: list[int] = field(default_factory=list)
    brands: list[int] = field(default_factory=list)
    popularity: float = 1.0


@dataclass
class Brand:
    index: int
    name: str
    tier: int
    makes: dict[str, list[str] | None]  # category -> product type names (None: all of them)
    prominence: float = 1.0

    def makes_type(self, ptype: ProductType) -> bool:
        if ptype.category not in self.makes:
            return False
        allowed = self.makes[ptype.category]
        return allowed is None or ptype.name in allowed


@dataclass
class Item:
    index: int
    ptype: int
    brand: int
    title: str
    price: float
    description: str
    feature: str | None
    material: str | None
    size: str | None
    variant: str | None
    line: int | None = None  # index into the list of product lines
    popularity: float = 1.0
    band: int = 1  # price band inside its product type: 0 budget, 1 mid, 2 premium
    item_id: str = ""


@dataclass
class Line:
    name: str
    brand: int
    category: str
    items: list[int] = field(default_factory=list)  # in routine order


def parse_taxonomy() -> tuple[list[ProductType], dict[str, Category], list[str]]:
    types: list[ProductType] = []
    categories: dict[str, Category] = {}
    departments: list[str] = []
    department = category = None
    for raw in TAXONOMY.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            name, link = (part.strip() for part in line[3:].split("->"))
            category = Category(name, department, link)
            categories[name] = category
        elif line.startswith("# "):
            department = line[2:].strip()
            departments.append(department)
        else:
            f = line.split("|")
            assert len(f) == 9, line
            ptype = ProductType(
                index=len(types), name=f[0], plural=f[1], price=float(f[2]), synonyms=f[3].split(";"),
                sizes=f[4].split(";"), materials=[] if f[5] == "-" else f[5].split(";"),
                features=f[6].split(";"), variant_kind=f[7], use=f[8], department=department,
                category=category.name, position=len(category.types),
            )
            category.types.append(ptype.index)
            types.append(ptype)
    for cat in categories.values():
        assert cat.link in categories, f"unknown linked category {cat.link}"
    return types, categories, departments


def parse_brands(categories: dict[str, Category], types: list[ProductType]) -> list[Brand]:
    brands = []
    for raw in BRANDS.strip().splitlines():
        name, tier, makes_text = raw.split("|")
        makes: dict[str, list[str] | None] = {}
        for entry in makes_text.split(";"):
            cat, _, type_name = entry.partition(":")
            assert cat in categories, entry
            if type_name:
                assert type_name in [types[t].name for t in categories[cat].types], entry
                makes.setdefault(cat, [])
                makes[cat].append(type_name)
            else:
                makes[cat] = None
        brand = Brand(len(brands), name, int(tier), makes)
        brands.append(brand)
        for cat in makes:
            categories[cat].brands.append(brand.index)
    for ptype in types:
        assert sum(b.makes_type(ptype) for b in brands) >= 2, f"{ptype.name} needs two brands"
    return brands


# --------------------------------------------------------------------------- text helpers


def lower_words(text: str) -> str:
    """Lower-case a phrase but keep acronyms as written: "USB-C Hub" -> "USB-C hub", "BPA-Free" -> "BPA-free"."""
    def part(p: str) -> str:
        return p if p.isupper() else p.lower()  # "USB", "C" of "USB-C" and of "Vitamin C", "4K"

    return " ".join("-".join(part(p) for p in word.split("-")) for word in text.split())


#: acronyms read as words, which take the article of their first sound ("a STEM toy")
SPOKEN_ACRONYMS = {"MIPS", "STEM", "PEVA"}


def article(phrase: str) -> str:
    """'a' or 'an' for a phrase; acronyms are read letter by letter (an LED, a USB-C hub)."""
    word = phrase.split()[0]
    letters = word.replace("-", "")
    if letters.isupper() and len(letters) > 1 and word not in SPOKEN_ACRONYMS:
        return "an" if word[0] in "AEFHILMNORSX" else "a"
    return "an" if word[:1].lower() in "aeiou" else "a"


def is_plural_or_mass(ptype_name: str) -> bool:
    """Product names that take no article: 'Running Shoes', 'Cat Litter'."""
    last = ptype_name.split()[-1]
    return (last.endswith("s") and not last.endswith("ss")) or last in MASS_NOUNS


def query_text(text: str) -> str:
    """How a shopper types an attribute: lower case, no hyphens, '&' spelled out."""
    return text.lower().replace("&", "and").replace("-", " ").replace("'", "")


def nice_price(value: float) -> float:
    """Round to a shop-like price: x.49 / x.99 below 10 dollars, x.99 above."""
    if value < 10:
        return round(max(1.0, math.floor(value * 2 + 0.5) / 2) - 0.01, 2)
    return round(math.floor(value) + 0.99, 2)


def price_ceiling(price: float) -> int:
    for step in (10, 25, 50, 100, 250, 500):
        if price < step * 4 or step == 500:
            return int(math.ceil((price + 0.01) / step) * step)
    return int(price)


# --------------------------------------------------------------------------- catalogue


class Catalogue:
    """Product types, brands, items and product lines, built from one random stream."""

    def __init__(self, seed: int, n_items: int = N_ITEMS) -> None:
        self.rand = Rand(seed, 1)
        self.types, self.categories, self.departments = parse_taxonomy()
        self.brands = parse_brands(self.categories, self.types)
        self.items: list[Item] = []
        self.lines: list[Line] = []
        self._titles: set[str] = set()
        r = self.rand
        for brand in self.brands:
            brand.prominence = r.lognormal(1.0, 0.5)
        for cat in self.categories.values():
            cat.popularity = r.lognormal(1.0, 0.45)
        for ptype in self.types:
            # earlier routine steps are entry points and sell more
            ptype.popularity = r.lognormal(1.0, 0.35) * 0.85 ** ptype.position
        self._make_lines()
        counts = self._type_counts(n_items)
        for ptype, count in zip(self.types, counts):
            failures = 0
            while len(ptype.items) < count:
                before = len(ptype.items)
                self._make_product(ptype, max_items=count - len(ptype.items))
                failures = failures + 1 if len(ptype.items) == before else 0
                if failures > 50:  # the taxonomy line offers too few distinct titles
                    raise RuntimeError(f"cannot make {count} distinct titles for {ptype.name}")
        self._assign_bands_and_popularity()
        self.line_next = self._line_successors()

    # ----- sizes of product types
    def _capacity(self, ptype: ProductType) -> int:
        """Rough number of distinct titles a product type allows."""
        n_brands = sum(b.makes_type(ptype) for b in self.brands)
        n_features = len(ptype.features)
        feature_choices = 1 + n_features * (n_features + 1) // 2  # none, one, or a pair
        return (n_brands * feature_choices * (len(ptype.materials) + 1) * (len(ptype.sizes) + 1)
                * (len(VARIANTS[ptype.variant_kind]) + 1))

    def _type_counts(self, n_items: int) -> list[int]:
        # product types that allow few distinct titles get fewer items, so that titles do
        # not collapse into near-copies of each other
        weights = [self.rand.lognormal(1.0, 0.3) * min(1.0, self._capacity(t) / 300) ** 0.7 for t in self.types]
        total = sum(weights)
        raw = [n_items * w / total for w in weights]
        counts = [max(int(x), len(t.items) + 4) for x, t in zip(raw, self.types)]
        # hand the remainder to the largest fractional parts, in a stable order
        order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - int(raw[i])), i))
        k = 0
        while sum(counts) < n_items:
            counts[order[k % len(order)]] += 1
            k += 1
        k = 0
        while sum(counts) > n_items:
            i = order[-1 - (k % len(order))]
            if counts[i] > len(self.types[i].items) + 4:
                counts[i] -= 1
            k += 1
        return counts

    # ----- product lines: one item per product type of a category, from one brand
    def _make_lines(self) -> None:
        names = self.rand.shuffled(LINE_NAMES)
        for cat in self.categories.values():
            n_lines = 2 if self.rand.chance(0.3) else 1
            candidates = self.rand.shuffled(cat.brands)
            for brand_idx in candidates[:n_lines]:
                brand = self.brands[brand_idx]
                member_types = [t for t in cat.types if brand.makes_type(self.types[t])]
                if len(member_types) < 3 or not names:
                    continue
                line = Line(names.pop(), brand_idx, cat.name)
                self.lines.append(line)
                for t in member_types:
                    item = self._make_item(self.types[t], brand, line=len(self.lines) - 1)
                    if item is not None:
                        line.items.append(item.index)

    # ----- one product, sometimes in several colour variants (genuine near-duplicates)
    def _make_product(self, ptype: ProductType, max_items: int) -> None:
        r = self.rand
        eligible = [b for b in self.brands if b.makes_type(ptype)]
        brand = r.weighted(eligible, [b.prominence for b in eligible])
        n_variants = 1
        if ptype.variant_kind != "none" and max_items > 1 and r.chance(0.22):
            n_variants = min(max_items, 2 + r.index(2))
        base = self._attributes(ptype)
        price = None
        variants = r.sample(VARIANTS[ptype.variant_kind], n_variants) if n_variants > 1 else [None]
        for variant in variants:
            item = self._make_item(ptype, brand, attrs=base, variant=variant, price=price)
            if item is not None:
                price = item.price  # colour variants share one price

    @staticmethod
    def _without_name_words(ptype: ProductType, options: list[str]) -> list[str]:
        # an attribute that repeats a word of the product name reads badly ("Strategy Strategy
        # Board Game", "Fly Fishing Fishing Rod", "EVA Foam Foam Roller")
        name_words = set(ptype.name.lower().split())
        return [f for f in options if not name_words & set(f.lower().split())]

    def _features(self, ptype: ProductType) -> list[str]:
        return self._without_name_words(ptype, ptype.features)

    def _materials(self, ptype: ProductType) -> list[str]:
        return self._without_name_words(ptype, ptype.materials)

    def _attributes(self, ptype: ProductType) -> dict:
        r = self.rand
        features = self._features(ptype)
        materials = self._materials(ptype)
        feature = r.pick(features) if r.chance(0.8) else None
        if feature and r.chance(0.25):  # two features, in taxonomy order: "Waterproof Ultralight"
            compatible = [f for f in features if f != feature
                          and not any({f, feature} <= group for group in EXCLUSIVE_FEATURES)]
            if compatible:
                second = r.pick(compatible)
                feature = " ".join(sorted([feature, second], key=features.index))
        return {
            "feature": feature,
            "material": r.pick(materials) if materials and r.chance(0.6) else None,
            "size": r.pick(ptype.sizes) if r.chance(0.75) else None,
            # about two titles in three start with the brand, as on Amazon (68% in the 2014
            # Beauty catalogue); the others leave it to the brand field. Brand-first for every
            # item would make the brand, not the category, the first thing a sentence encoder
            # groups by.
            "brand_in_title": r.chance(0.68),
        }

    def _make_item(self, ptype, brand, *, line=None, attrs=None, variant=None, price=None) -> Item | None:
        r = self.rand
        for attempt in range(12):
            a = dict(attrs) if attrs is not None and attempt == 0 else self._attributes(ptype)
            v = variant
            if v is None and ptype.variant_kind != "none" and r.chance(0.6):
                v = r.pick(VARIANTS[ptype.variant_kind])
            # at least four words in a title: a bare "Funfolk Kite" says too little
            fillers = (("feature", self._features(ptype)), ("size", ptype.sizes), ("material", self._materials(ptype)))
            for key, pool in fillers:
                if len(self._title(ptype, brand, a, v, line).split()) >= 4:
                    break
                if a[key] is None and pool:
                    a[key] = r.pick(pool)
            title = self._title(ptype, brand, a, v, line)
            if title not in self._titles and 4 <= len(title.split()) <= 12:
                break
        else:
            return None
        self._titles.add(title)
        if price is None:
            size_factor = 1.0
            if a["size"] in ptype.sizes:
                size_factor = 1.0 + 0.18 * ptype.sizes.index(a["size"])
            tier_factor = (0.62, 1.0, 1.65)[brand.tier]
            raw = ptype.price * tier_factor * size_factor * r.lognormal(1.0, 0.22) * (1.08 if line is not None else 1.0)
            price = nice_price(max(raw, 2.0))
        item = Item(
            index=len(self.items), ptype=ptype.index, brand=brand.index, title=title, price=price,
            description=self._description(ptype, a), feature=a["feature"], material=a["material"],
            size=a["size"], variant=v, line=line,
        )
        self.items.append(item)
        ptype.items.append(item.index)
        return item

    def _title(self, ptype: ProductType, brand: Brand, a: dict, variant: str | None, line: int | None) -> str:
        words = [brand.name] if a["brand_in_title"] else []
        if line is not None:
            words.append(self.lines[line].name)
        if a["feature"]:
            words.append(a["feature"])
        if a["material"] and (line is None or len(" ".join(words).split()) < 4):
            words.append(a["material"])
        words.append(ptype.name)
        title = " ".join(words)
        extras = [x for x in (a["size"], variant) if x]
        if extras:
            title += ", " + ", ".join(extras)
        # keep titles at most 12 words long: drop the material first
        if len(title.split()) > 12 and a["material"]:
            return self._title(ptype, brand, dict(a, material=None), variant, line)
        return title

    def _description(self, ptype: ProductType, a: dict) -> str:
        r = self.rand
        noun = lower_words(ptype.name)
        feat = lower_words(a["feature"]) if a["feature"] else None
        mat = lower_words(a["material"]) if a["material"] else None
        choice = r.index(3)
        if choice == 1 and mat:
            return f"{noun[0].upper()}{noun[1:]} made of {mat}, {ptype.use}."
        phrase = " ".join(x for x in (feat if choice != 1 else None, mat if choice == 2 else None, noun) if x)
        if not is_plural_or_mass(ptype.name):
            phrase = f"{article(phrase)} {phrase}"
        return f"{phrase[0].upper()}{phrase[1:]} {ptype.use}."

    def _assign_bands_and_popularity(self) -> None:
        r = self.rand
        for ptype in self.types:
            members = ptype.items
            # price band = tertile of the price inside the product type
            by_price = sorted(members, key=lambda i: (self.items[i].price, i))
            for rank, i in enumerate(by_price):
                self.items[i].band = min(2, rank * 3 // len(members))
            # Zipf-like popularity inside the product type, in a random order
            for rank, i in enumerate(r.shuffled(members)):
                self.items[i].popularity = 1.0 / (rank + 1.0) ** 1.05

    def _line_successors(self) -> dict[int, int]:
        nxt = {}
        for line in self.lines:
            for a, b in zip(line.items, line.items[1:]):
                nxt[a] = b
        return nxt

    # ----- ids, in a shuffled order so that ids and file order do not reveal the category
    def assign_ids(self) -> list[Item]:
        order = self.rand.shuffled(range(len(self.items)))
        for k, i in enumerate(order):
            self.items[i].item_id = f"P{k + 1:05d}"
        return sorted(self.items, key=lambda it: it.item_id)

    def record(self, item: Item) -> dict:
        ptype = self.types[item.ptype]
        rec = {
            "item_id": item.item_id,
            "title": item.title,
            "brand": self.brands[item.brand].name,
            "categories": [ptype.department, ptype.category, ptype.plural],
            "price": item.price,
            "description": item.description,
        }
        if item.variant and ptype.variant_kind in COLOR_KINDS:
            rec["color"] = item.variant
        if item.material:
            rec["material"] = item.material
        return rec


# --------------------------------------------------------------------------- users


@dataclass
class Profile:
    categories: list[str]
    cat_weights: list[float]
    brands: list[int]
    band: int
    start_logit: float
    drift: float  # change of the logit from the first to the last event of the user


class Shoppers:
    """Simulates user histories; see sample_data/README.md for the process in words."""

    # what happens after an item (probabilities, renormalised over the available actions)
    ACTIONS = {
        "line": 0.55,        # the next item of the same product line (only if there is one)
        "complement": 0.36,  # the next step of the category's routine (tent -> sleeping bag)
        "browse": 0.18,      # another product type of the same category
        "alternative": 0.06, # another item of the same product type (e.g. another colour)
        "profile": 0.22,     # a new session inside the current taste profile
        "switch": 0.08,      # a new session in another of the user's profiles
        "noise": 0.07,       # anything, by global popularity
    }

    def __init__(self, cat: Catalogue, seed: int) -> None:
        self.cat = cat
        self.rand = Rand(seed, 2)
        self.cat_names = list(cat.categories)
        # global popularity of each item, for noise picks
        self.global_weights = [
            cat.categories[cat.types[it.ptype].category].popularity * cat.types[it.ptype].popularity
            * it.popularity
            for it in cat.items
        ]

    # ----- taste profiles
    def make_profile(self) -> Profile:
        r, cat = self.rand, self.cat
        anchor = r.weighted(self.cat_names, [cat.categories[c].popularity for c in self.cat_names])
        cats = [anchor]
        dept = cat.categories[anchor].department
        same_dept = [c for c in self.cat_names if cat.categories[c].department == dept and c != anchor]
        if same_dept and r.chance(0.55):
            cats.append(r.pick(same_dept))
        link = cat.categories[anchor].link
        if link not in cats and r.chance(0.3):
            cats.append(link)
        weights = [1.0] + [r.lognormal(0.5, 0.4) for _ in cats[1:]]
        eligible = sorted({b for c in cats for b in cat.categories[c].brands})
        n_brands = 1 + (1 if r.chance(0.5) else 0)
        brands = []
        for _ in range(n_brands):
            choices = [b for b in eligible if b not in brands]
            brands.append(r.weighted(choices, [cat.brands[b].prominence for b in choices]))
        band = r.weighted([0, 1, 2], [0.35, 0.45, 0.20])
        return Profile(cats, weights, brands, band, r.normal(), 2.0 * r.normal())

    # ----- choosing items
    def choose_item(self, ptype_idx: int, profile: Profile, owned: set, current: Item | None) -> int | None:
        items = self.cat.items
        cands = [i for i in self.cat.types[ptype_idx].items if i not in owned]
        if not cands:
            return None
        weights = []
        for i in cands:
            it = items[i]
            s = math.log(it.popularity)
            if it.brand in profile.brands:
                s += 1.6
            if it.band == profile.band:
                s += 0.9
            elif abs(it.band - profile.band) == 2:
                s -= 0.7
            if current is not None and it.brand == current.brand:
                s += 0.7
            weights.append(math.exp(s))
        return self.rand.weighted(cands, weights)

    def entry_type(self, category: str) -> int:
        types = self.cat.categories[category].types
        return self.rand.weighted(types, [self.cat.types[t].popularity for t in types])

    def next_in_routine(self, current: Item) -> int:
        ptype = self.cat.types[current.ptype]
        cat = self.cat.categories[ptype.category]
        pos = ptype.position
        step = 1 if self.rand.chance(0.75) else 2
        if pos + step < len(cat.types):
            return cat.types[pos + step]
        if self.rand.chance(0.6):  # routine done: continue in the linked category
            return self.cat.categories[cat.link].types[0]
        return self.rand.pick(cat.types)

    # ----- one user
    def simulate(self, n_events: int) -> tuple[list[int], list[int]]:
        r, cat = self.rand, self.cat
        profiles = [self.make_profile() for _ in range(1 + (r.index(3) if r.chance(0.6) else 0))]
        owned: set[int] = set()
        seq: list[int] = []
        gaps: list[float] = []
        current: Item | None = None
        active = 0
        attempts = 0
        while len(seq) < n_events and attempts < n_events * 20:
            attempts += 1
            progress = len(seq) / max(1, n_events - 1)
            action = "profile" if current is None else self._action(current, owned, len(profiles))
            # a new session re-draws the active profile now and then; the profiles' weights
            # drift over the user's lifetime, so tastes move slowly
            if current is None or action == "switch" or (action == "profile" and r.chance(0.25)):
                logits = [p.start_logit + p.drift * progress for p in profiles]
                top = max(logits)
                active = r.weighted_index([math.exp(x - top) for x in logits])
            profile = profiles[active]
            if action == "profile" and r.chance(0.04):
                self._drift_brand(profile)
            choice = self._pick(action, current, profile, owned)
            if choice is None:
                continue
            gaps.append(self._gap(action))
            seq.append(choice)
            owned.add(choice)
            current = cat.items[choice]
        return seq, self._timestamps(gaps)

    def _action(self, current: Item, owned: set, n_profiles: int) -> str:
        names, weights = [], []
        for name, w in self.ACTIONS.items():
            if name == "line":
                nxt = self.cat.line_next.get(current.index)
                if nxt is None or nxt in owned:
                    continue
            if name == "switch" and n_profiles == 1:
                continue
            names.append(name)
            weights.append(w)
        return self.rand.weighted(names, weights)

    def _pick(self, action: str, current: Item | None, profile: Profile, owned: set) -> int | None:
        r, cat = self.rand, self.cat
        if action == "line":
            return cat.line_next[current.index]
        if action == "complement":
            return self.choose_item(self.next_in_routine(current), profile, owned, current)
        if action == "browse":
            ptype = cat.types[current.ptype]
            others = [t for t in cat.categories[ptype.category].types if t != ptype.index]
            return self.choose_item(r.pick(others), profile, owned, current)
        if action == "alternative":
            return self.choose_item(current.ptype, profile, owned, current)
        if action == "noise":
            idx = r.weighted_index(self.global_weights)
            return None if idx in owned else idx
        # "profile" / "switch": a new session somewhere in the active profile
        category = r.weighted(profile.categories, profile.cat_weights)
        return self.choose_item(self.entry_type(category), profile, owned, None)

    def _drift_brand(self, profile: Profile) -> None:
        """Tastes drift: now and then a preferred brand is replaced by another one."""
        eligible = sorted({b for c in profile.categories for b in self.cat.categories[c].brands} - set(profile.brands))
        if eligible:
            profile.brands[self.rand.index(len(profile.brands))] = self.rand.pick(eligible)

    def _gap(self, action: str) -> float:
        """Seconds since the previous event: minutes inside a session, days between sessions."""
        r = self.rand
        same_session = {"line": 0.45, "complement": 0.45, "browse": 0.7, "alternative": 0.8}.get(action, 0.0)
        if r.chance(same_session):
            if action == "complement" and r.chance(0.02):
                return 0.0  # bought together in one order: a (rare) timestamp tie
            return 30.0 + r.exponential(900.0)
        if same_session > 0:
            return r.lognormal(2.0 * DAY, 0.8)
        return r.lognormal(7.0 * DAY, 1.0)

    def _timestamps(self, gaps: list[float]) -> list[int]:
        gaps = [0.0] + gaps[1:]
        span = sum(gaps)
        window = (T_END - T_START) * 0.95
        if span > window:  # a very long history is squeezed into the two years
            gaps = [g * window / span for g in gaps]
            span = window
        start = T_START + self.rand.uniform() * (T_END - T_START - span - 3600)
        out, t = [], start
        for g in gaps:
            t += g
            out.append(int(t))
        return out

    def history_length(self) -> int:
        """5..60 events, skewed: most users have a dozen, a few have many."""
        return min(60, 5 + int(self.rand.lognormal(9.0, 0.85)))


# --------------------------------------------------------------------------- queries


class QueryWriter:
    """Short search queries generated from an item's attributes, with paraphrase variety."""

    #: weight of a query by how many identifying attributes it names (0, 1, 2, 3+)
    SPECIFICITY_WEIGHT = (0.4, 1.0, 2.5, 3.0)

    def __init__(self, cat: Catalogue, seed: int) -> None:
        self.cat = cat
        self.rand = Rand(seed, 3)
        self.uses: dict[str, int] = {}  # how often a query string has been used already

    def synonyms(self, item: Item) -> list[str]:
        """The product type's synonyms that do not contradict the item.

        A synonym that names an attribute of the product type ("spinning reel", "kitten food",
        "memory foam pillow") is only used for items that have that attribute.
        """
        ptype = self.cat.types[item.ptype]
        vocab = {w for text in ptype.features + ptype.materials + ptype.sizes for w in query_text(text).split()}
        own = {w for text in (item.feature, item.material, item.size) if text for w in query_text(text).split()}
        name_words = set(query_text(ptype.name).split())
        ok = [syn for syn in ptype.synonyms if all(w in own or w in name_words or w not in vocab for w in syn.split())]
        return ok or [query_text(ptype.name)]

    def candidates(self, item: Item) -> list[tuple[str, float]]:
        """(query, weight) pairs; specific queries weigh more, much-used strings less."""
        cat, r = self.cat, self.rand
        ptype = cat.types[item.ptype]
        brand = query_text(cat.brands[item.brand].name)
        feat = query_text(item.feature) if item.feature else None
        mat = query_text(item.material) if item.material else None
        size = query_text(item.size) if item.size else None
        var = query_text(item.variant) if item.variant else None
        line = query_text(cat.lines[item.line].name) if item.line is not None else None
        kids = "kids" in (size or "") or ptype.department == "Toys & Games"
        under = f"under ${price_ceiling(item.price)}" if item.band < 2 else None
        price_word = PRICE_WORDS[item.band][r.index(4)] if item.band in PRICE_WORDS else None
        out: dict[str, float] = {}

        def add(*parts):
            if any(p is None for p in parts):
                return
            text = " ".join(parts)
            words = text.split()
            if not 2 <= len(words) <= 7 or len(set(words)) < len(words):  # no "family family board game"
                return
            specific = sum(p in (brand, feat, mat, size, var, line) for p in parts) + 0.5 * (
                under in parts or price_word in parts)
            weight = self.SPECIFICITY_WEIGHT[min(3, int(specific))] / (1.0 + 4.0 * self.uses.get(text, 0))
            out.setdefault(text, weight)

        for syn in self.synonyms(item):
            add(feat, syn)
            add(feat, mat, syn)
            add(var, syn)
            add(var, mat, syn)
            add(brand, syn)
            add(brand, feat, syn)
            add(brand, line, syn)
            add(line, syn)
            add(syn, size)
            add(feat, syn, size)
            add(brand, syn, var)
            add(var, feat, syn)
            if ptype.variant_kind in COLOR_KINDS:
                add(syn, "in", var)
            add(price_word, syn)
            add(price_word, brand, syn)
            add(price_word, feat, syn)
            add(syn, under)
            add(feat, syn, under)
            if kids:
                add(syn, "for kids")
                add(feat, syn, "for kids")
        return list(out.items())

    def take(self, cands: list[tuple[str, float]], k: int, exclude: set[str]) -> list[str]:
        """Draw ``k`` distinct queries by weight, without replacement."""
        pool = [(q, w) for q, w in cands if q not in exclude]
        chosen = []
        while pool and len(chosen) < k:
            j = self.rand.weighted_index([w for _, w in pool])
            chosen.append(pool.pop(j)[0])
        for q in chosen:
            self.uses[q] = self.uses.get(q, 0) + 1
        return chosen

    def write_rows(self, items_in_id_order: list[Item]) -> list[tuple[str, str, str]]:
        rows = []
        for item in items_in_id_order:
            u = self.rand.uniform()
            if u < 0.68:  # two train queries and a different test query
                cands = self.candidates(item)
                train = self.take(cands, 2, set())
                test = self.take(cands, 1, set(train))
            elif u < 0.80:  # a test query for an item that has no train query
                train, test = [], self.take(self.candidates(item), 1, set())
            else:
                continue
            rows += [(q, item.item_id, "train") for q in train]
            rows += [(q, item.item_id, "test") for q in test]
        return rows


# --------------------------------------------------------------------------- writing


def generate(out: Path, seed: int = DEFAULT_SEED, n_users: int = N_USERS) -> dict:
    """Generate the sample catalogue into ``out``.

    Parameters
    ----------
    out : Path
        Folder for ``items.jsonl``, ``interactions.csv`` and ``queries.csv`` (created if
        missing; existing files are overwritten).
    seed : int
        Seed of all random draws; the same seed gives byte-identical files.
    n_users : int
        Number of simulated shoppers.

    Returns
    -------
    dict
        Counts (items, categories, brands, interactions, queries, ...) for the report.
    """
    cat = Catalogue(seed)
    items = cat.assign_ids()
    shoppers = Shoppers(cat, seed)
    interactions = []
    for u in range(n_users):
        seq, times = shoppers.simulate(shoppers.history_length())
        interactions += [(f"U{u + 1:05d}", cat.items[i].item_id, t) for i, t in zip(seq, times)]
    queries = QueryWriter(cat, seed).write_rows(items)

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "items.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for item in items:
            fh.write(json.dumps(cat.record(item), ensure_ascii=False) + "\n")
    _write_csv(out / "interactions.csv", ["user_id", "item_id", "timestamp"], interactions)
    _write_csv(out / "queries.csv", ["query", "item_id", "split"], queries)
    return {
        "items": len(items),
        "departments": len(cat.departments),
        "categories": len(cat.categories),
        "product_types": len(cat.types),
        "brands": len(cat.brands),
        "product_lines": len(cat.lines),
        "users": n_users,
        "interactions": len(interactions),
        "queries_train": sum(1 for q in queries if q[2] == "train"),
        "queries_test": sum(1 for q in queries if q[2] == "test"),
    }


def _write_csv(path: Path, header: list[str], rows) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sample_data",
                        help="output folder (default: the repository's sample_data/)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    counts = generate(args.out, args.seed)
    for key, value in counts.items():
        print(f"{key:>14}: {value}")
    print(f"wrote {args.out}/items.jsonl, interactions.csv, queries.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
