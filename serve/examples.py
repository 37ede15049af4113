"""Example articles for the web page, written by the eventcoder team (invented events)."""

EXAMPLES = [
    ("Drone attacks on an air base",
     "ERBIL, Iraq, March 12 -- Three explosive-laden drones targeted the Harir air base north of Erbil late on "
     "Tuesday, the Kurdistan Region's counter-terrorism service said. Two of the drones were shot down before "
     "reaching the base and the third struck an empty hangar, causing no casualties. A little-known group calling "
     "itself the Guardians of the Blood claimed the attack on its Telegram channel and warned it would strike US "
     "forces again unless they left Iraq. The Iraqi foreign ministry condemned the attack as a violation of Iraqi "
     "sovereignty and said it had opened an investigation. Washington accused Iran-backed militias of carrying out "
     "the strike, a charge Tehran rejected as baseless."),
    ("Protest and crackdown",
     "Thousands of garment workers marched through central Dhaka on Sunday demanding a higher minimum wage. Police "
     "fired tear gas and rubber bullets to disperse protesters who had blocked a main highway, witnesses said. At "
     "least 40 people were detained, according to a rights group. The labour minister urged factory owners and "
     "unions to return to talks, and the garment exporters' association said it would consider a new pay offer."),
    ("Talks and aid",
     "Kenyan President William Ruto hosted Somali and Ethiopian leaders in Nairobi for talks on a disputed port "
     "deal. The three sides agreed to set up a joint technical committee, officials said. Separately, the World "
     "Food Programme delivered 2,000 tonnes of food to drought-hit districts in northern Kenya. The United Nations "
     "praised Nairobi for keeping its border open to refugees. Analysts say the region has faced five failed rainy "
     "seasons since 2020."),
]
