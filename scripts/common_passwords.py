"""Writes domain/common_passwords.txt, the list of passwords nyutai refuses (issue 12).

Developer tool, run by hand when the list changes: ``python -m scripts.common_passwords``.
The list is written for nyutai and dedicated to the public domain (CC0): the base entries
are the passwords, keyboard walks and words that every published ranking of breached
passwords puts at the top (facts, not anyone's text), common romaji words and names used
in Japan, and the ways people stretch them to 12 characters (years, "123", "!"). The checks
in domain/passwords.py also undo leetspeak and strip digits and symbols at the ends, so
"P@ssw0rd2024!" is caught through "password" without listing every variant.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "domain" / "common_passwords.txt"


def _words(text: str) -> list[str]:
    return text.split()


# The passwords at the top of every breach ranking, in about that order.
TOP = _words("""
123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon 123123 baseball
abc123 football monkey letmein 696969 shadow master 666666 qwertyuiop 123321 mustang
1234567890 michael 654321 superman 1qaz2wsx 7777777 121212 000000 qazwsx 123qwe killer
trustno1 jordan jennifer zxcvbnm asdfgh hunter buster soccer harley batman andrew tigger
sunshine iloveyou 2000 charlie robert thomas hockey ranger daniel starwars klaster 112233
george computer michelle jessica pepper 1111 zxcvbn 555555 11111111 131313 freedom 777777
pass maggie 159753 aaaaaa ginger princess joshua cheese amanda summer love ashley nicole
chelsea biteme matthew access yankees 987654321 dallas austin thunder taylor matrix
mobilemail mom monitor monitoring montana moon moscow william corvette hello martin heather
secret merlin diamond 1234qwer gfhjkm hammer silver 222222 88888888 anthony justin test
bailey q1w2e3r4t5 patrick internet scooter orange 11111 golfer cookie richard samantha
bigdog guitar jackson whatever mickey chicken sparky snoopy maverick phoenix camaro peanut
morgan welcome falcon cowboy ferrari samsung andrea smokey steelers joseph mercedes dakota
arsenal eagles melissa boomer booboo spider nascar monster tigers yellow xxxxxx 123123123
gateway marina diablo bulldog qwer1234 compaq purple hardcore banana junior hannah 123654
porsche lakers iceman money cowboys 987654 london tennis 999999 ncc1701 coffee scooby 0000
miller boston q1w2e3r4 brandon yamaha chester mother forever johnny edward 333333 oliver
redsox player nikita knight fender barney midnight please brandy chicago badboy slayer
rangers charles angel flower rabbit wizard bigdick jasper enter rachel chris steven winner
adidas victoria natasha 1q2w3e4r jasmine winter prince panties marine ghbdtn fishing cocacola
casper james 232323 raiders 888888 marlboro gandalf asdfasdf crystal 87654321 12344321
golden 8675309 panther lauren angela bitch spanky thx1138 angels madison winston shannon
mike toyota blowjob jordan23 canada sophie apples dick tiger razz 123abc pokemon qazxsw
55555 qwaszx muffin johnson murphy cooper jonathan liverpoo david danielle 159357 jackie
1990 123456a 789456 turtle horny abcd1234 scorpion qazwsxedc 101010 butter carlos password1
dennis slipknot qwerty123 booger asdf 1991 black startrek 12341234 cameron newyork rainbow
nathan john 1992 rocket viking redskins butthead asdfghjkl 1212 sierra peaches gemini
doctor wilson sandra helpme qwertyui victor florida dolphin pookie captain tucker blue
liverpool theman bandit dolphins maddog packers jaguar lovers nicholas united tiffany
maxwell zzzzzz nirvana jeremy suckit stupid porn monica elephant giants jackass hotdog
rosebud success debbie mountain 444444 xxxxxxxx warrior 1q2w3e4r5t q1w2e3 123456q albert
metallic lucky azerty 7777 shithead alex bond007 alexis 1111111 samson 5150 willie scorpio
bonnie gators benjamin voodoo driver dexter 2112 jason calvin freddy 212121 creative 12345a
sydney rush2112 1989 asdfghjk red123 bubba 4815162342 passw0rd trouble gunner happy
gordon legend jessie stella qwert eminem arthur apple nissan bullshit bear america 1qazxsw2
nothing parker 4444 rebecca qweqwe garfield 01012011 beavis 69696969 jack asdasd december
2222 102030 252525 11223344 magic apollo skippy 315475 girls kitten golf copper braves
shelby godzilla beaver fred tomcat august buddy airborne 1993 1988 lifehack qqqqqq brooklyn
animal platinum phantom online xavier darkness blink182 power fish green 789456123 voyager
police travis 12qwaszx heaven snowball lover abcdef 00000 pakistan 007007 walter playboy
blazer cricket sniper hooters donkey willow loveme saturn therock redwings bigboy pumpkin
trinity williams tinkerbell nintendo thunderbird zaq12wsx purple1 111222 spongebob
admin admin123 administrator root toor changeme default guest user login welcome1 letmein1
passpass passwort motdepasse contrasena senha parola salasana wachtwoord haslo
p@ssw0rd p@ssword pa55word pa$$word passw0rd1 password12 password123 password1234
password12345 password123456 qwerty1234 qwerty12345 qwertyuiop123 1qaz2wsx3edc 1qaz2wsx3edc4rfv
zaq1xsw2cde3 qazwsxedcrfv qazwsxedcrfvtgb 1q2w3e4r5t6y 1q2w3e4r5t6y7u 1q2w3e4r5t6y7u8i
q1w2e3r4t5y6 asdfghjkl123 zxcvbnm123 abc123456 abcdef123 abcd12345 a1b2c3d4 a1b2c3d4e5f6
iloveyou1 iloveyou123 letmein123 welcome123 welcome2024 admin1234 administrator1 root1234
changeme123 trustno1 football1 baseball1 superman1 batman123 monkey123 dragon123 shadow123
master123 sunshine1 princess1 charlie1 michael1 jennifer1 jordan123 hello123 freedom1
whatever1 qwerty1 qwerty12 asdf1234 zxcv1234 1qazxsw23edc 11111111111 111111111111
123123123123 123456123456 123451234512345 0987654321 09876543210 1234567890123
""")

# Words people pick (English): themes, animals, teams, places, things.
WORDS = _words("""
access account action adventure airplane alabama alaska alberta alexander alice alligator
alpha amber america amsterdam anaconda anderson angel angelina animal anime antonio apache
apple april aquarius arizona arsenal artist asdf atlanta atlantis august aurora austin
australia autumn avalon avatar avenger awesome baby bailey banana bandit barbie barcelona
baseball basketball batman beach bear beatles beautiful beauty beckham benjamin berlin
bigboy bigdaddy billy birdie biscuit blackbird blackjack blessed blizzard blondie blossom
blue blueberry bluesky bond bonjour booboo boston brandon brazil brooklyn brother buddy
buffalo bulldog bullet bunny butterfly buttercup california camaro canada cancer candy
captain cardinal carolina caroline carpet cartman casino casper castle catalina catherine
celtic champion chance changeme charger charlie charlotte cheese chelsea cherry chester
chevy chicago chicken chocolate christian christmas christopher cinderella cinnamon
classic clover cobra coffee college colorado columbia comet computer cookie cool corona
cougar country cowboy coyote crazy cricket crystal cupcake daddy daisy dakota dallas
dancer danger darkness darling dave death december delta denver destiny detroit devil
diamond dinosaur disney doctor doggie dolphin domino donald dragon dreamer dreams eagle
earth eclipse einstein elephant elizabeth emerald energy england enigma enjoy enterprise
europe everton evolution excalibur explorer express falcon family fantasy farmer father
february ferrari fighter firebird fireman firefly fishing flower flowers flying football
forest forever france freedom friday friend friends frog future galaxy gangster garden
gemini genesis genius george germany ghost giants ginger girl global goddess godzilla
golden goldfish goodluck google gorilla gotohell grace grandma graphic green gregory
guitar gundam hacker halloween hamster hannah happiness happy harley harmony harrypotter
hawaii heart heaven hello helpme hercules hockey holiday hollywood honda honey horizon
horse hotdog house houston hunter husband iceman idontknow iloveu imagine indian infinity
internet iverson jackie jaguar january jasmine jesus jordan joseph journey julia july
june jupiter justice kangaroo karate katherine kelly kennedy killer kingdom kingkong
kitten kitty knight ladybug lakers lasvegas legend lemon leonardo liberty lightning lily
lincoln lion liverpool lollipop london lonely lovely lucky madison madonna magic magnum
mandarin manchester mango maria marine mario marlboro mars martin marvel master matrix
maverick maximus melody memory mercedes mercury metallica mexico miami michigan mickey
midnight million miracle mirror missy mistress money monkey monster moonlight morning
mother motorola mountain muffin music mustang mystery naruto nascar natalie nature
newcastle newyork nicole nightmare ninja nirvana nothing november oblivion october
olivia omega orange oregon orlando pacific packers painter panda panther paradise paris
parker passion patience peace peaches peanut pegasus penguin pepper phantom phoenix
pickles pirate pizza player please pokemon police poohbear popcorn porsche power
precious predator prince princess pumpkin purple puppy python qwerty rabbit racing
rainbow raider rascal raven redskins redsox remember rescue richard robert rocket
rockstar romance rosebud rosemary royal ruby runner russia sabrina sailor samantha
samurai sandiego saturn scooby scorpion scotland secret september serenity shadow shannon
shark sharon sierra silver simple simpson skater skippy skywalker smile smokey snickers
snoopy snowball snowman soccer softball soldier sophie southpark sparkle sparky speedy
spider spiderman spirit sporting spring squirrel stalker starlight stars starwars steelers
stephanie sterling stinky strawberry student success summer sunflower sunny sunset
sunshine superman superstar surfer sweetheart sweetie swimming sydney system tennessee
tennis texas thomas thunder tiger tigger titanic tomato toyota training transformer
travel treasure trinity trouble trumpet turtle twilight united universe valentine
vampire vanilla vegeta velvet venus victoria victory viking vincent violet virginia
volcano volleyball voodoo warcraft warrior washington welcome whatever whisky william
williams wilson windows winner winter wisdom wizard wolverine wonderful yankee yankees
yellow yoyoyo zeppelin zombie
""")

# Given names and family names common in English-language breach lists.
NAMES = _words("""
aaron adam adrian alan albert alex alexandra alexis alfred alicia alison allison amanda
amy andrea andrew angela anna anne annie anthony ashley barbara benjamin bernard beth
betty bill billy bobby bradley brandy brenda brian brittany bruce caitlin carl carlos
carmen carol cassandra cathy charles cheryl christina christine cindy claire clara
colin connor craig crystal cynthia daniel danny david deborah dennis derek diana diane
dominic donna dorothy douglas dylan edward elaine eleanor elena elijah ellen emily emma
eric erica erin ethan eugene evelyn frank gabriel gary gerald gloria grace gregory hailey
harold harry heather helen henry holly howard isaac isabella jack jacob jacqueline james
jamie jane janet janice jason jeffrey jenna jenny jeremy jerry jesse jessica jimmy joan
joe john jonathan joseph joshua joyce juan judith julian julie justin karen katie keith
kenneth kevin kimberly kyle larry laura lauren lawrence leah leonard linda lisa logan
louis lucas lucy luis luke madison margaret maria marie marilyn mark martha mary mason
matthew megan melanie michelle mildred monica nancy nathan nicholas noah olivia pamela
patricia patrick paul peter philip rachel ralph randy raymond rebecca richard robin roger
ronald rose roy russell ruth ryan samuel sandra sara sarah scott sean shirley simon
stephen steve susan teresa terry theresa timothy tina todd tyler valerie vanessa victor
vincent virginia walter wayne william zachary smith johnson brown jones garcia davis
rodriguez martinez hernandez lopez gonzalez anderson taylor moore jackson thompson white
harris clark lewis robinson walker young allen king wright hill scott green adams baker
nelson carter mitchell roberts turner phillips campbell evans collins stewart morris
""")

# Romaji words, names and places that Japanese users pick (and the keyboard's kana layer).
JAPAN = _words("""
nihon nippon japan tokyo osaka kyoto yokohama nagoya sapporo fukuoka kobe sendai hiroshima
okinawa hokkaido kyushu shikoku honshu chiba saitama kanagawa shinjuku shibuya akihabara
ikebukuro harajuku ginza asakusa fujisan fujiyama sakura hanami momiji yuki tsuki hoshi
sora umi yama kawa mizu hikari kaze hana kokoro yume ai aishiteru daisuki suki arigato
arigatou konnichiwa sayonara ohayo ohayou kawaii sugoi genki nyanko neko inu usagi kitsune
tanuki panda kuma tora ryu doragon samurai ninja shogun sensei senpai kohai otaku manga
anime doraemon pikachu pokemon totoro ghibli gundam evangelion naruto sasuke goku vegeta
onepiece luffy zoro conan kitty hellokitty rilakkuma mario zelda sonic tamagotchi ramen
sushi tempura udon soba onigiri mochi matcha sake nattou natto tofu miso curry gohan
yakiniku takoyaki okonomiyaki gyoza bento sakana tamago ringo mikan ichigo momo budou
suika banana meron kaisha shigoto gakkou daigaku koukou sensei oyaji okaasan otousan
oniisan oneesan imouto otouto kazoku tomodachi koibito kanojo kareshi shiawase tanoshii
ganbare ganbatte yoroshiku himitsu anshin anzen pasuwado pasuwaado tesuto kanri kanrisha
admin1 jimusho soumu jinji keiri shiyakusho yakusho kuyakusho kenchou choutei mynumber
mainanba mainanbaa kojinbango juminhyo koseki satou suzuki takahashi tanaka watanabe ito
itou yamamoto nakamura kobayashi kato katou yoshida yamada sasaki yamaguchi matsumoto
inoue kimura hayashi shimizu yamazaki mori abe ikeda hashimoto yamashita ishikawa nakajima
maeda fujita ogawa goto gotou okada hasegawa murakami kondo kondou ishii saito saitou sakamoto
endo endou aoki fujii nishimura fukuda ota oota miura fujiwara okamoto matsuda nakagawa
hiroshi takashi kenji yuki yuko yuka yumi akira makoto satoshi daisuke kenta shota shouta
haruto yuto yuuto sota souta ren riku hinata yui aoi mei hana sakura misaki ayaka asuka
naoki naomi kazuki takumi tsubasa hayato ryota ryouta kaito taro tarou jiro jirou hanako
keiko kazuko michiko tomoko yoko youko akiko hiroko junko mayumi megumi kaori emi eri
""")

# Keyboard walks and runs (the checks also catch runs of the alphabet and digits).
WALKS = _words("""
qwerty qwertyu qwertyui qwertyuio qwertyuiop qwertyuiopasdf asdfgh asdfghj asdfghjk
asdfghjkl zxcvbn zxcvbnm qazwsx qazwsxedc qazwsxedcrfv wsxedc edcrfv rfvtgb tgbyhn
yhnujm 1qaz 2wsx 3edc 4rfv 1qaz2wsx zaq12wsx xsw23edc 1q2w3e 1q2w3e4r 1q2w3e4r5t
q1w2e3 q1w2e3r4 q1w2e3r4t5 azerty azertyuiop qwertz qwertzuiop poiuytrewq lkjhgfdsa
mnbvcxz asdfjkl qweasd qweasdzxc qazxsw qwaszx 123qweasd 123qweasdzxc qweasdzxc123
zaqxsw zaq1 xsw2 cde3 vfr4 bgt5 nhy6 mju7 poiuyt lkjhgf mnbvcx abcdefg abcdefgh
abcdefghi abcdefghij abcdefghijk abcdefghijkl 0123456789 9876543210 01234567890
""")

# How people stretch a short word to the required length.
SUFFIXES = [
    "1",
    "12",
    "123",
    "1234",
    "12345",
    "!",
    "1!",
    "123!",
    "01",
    "007",
    "2024",
    "2025",
    "2026",
    "2023",
    "2022",
    "2020",
    "2000",
    "1990",
    "@123",
    "#1",
    "99",
    "69",
    "11",
]


def entries() -> list[str]:
    bases = [w.lower() for w in TOP + WORDS + NAMES + JAPAN + WALKS]
    seen: dict[str, None] = dict.fromkeys(bases)
    # variants only for the most common bases: the checks strip such endings anyway, the
    # listed forms are there for readers and for tools that use the list as it is
    for base in [w.lower() for w in TOP[:120] + JAPAN[:40]]:
        if not base.isalpha():
            continue
        for suffix in SUFFIXES:
            seen.setdefault(base + suffix)
    return [e for e in seen if e]


def main() -> None:
    lines = [
        "# Passwords nyutai refuses (domain/passwords.py), one per line, compared ignoring case.",
        "# Written for nyutai by scripts/common_passwords.py; public domain (CC0).",
        *entries(),
    ]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(lines) - 2} entries)")


if __name__ == "__main__":
    main()
