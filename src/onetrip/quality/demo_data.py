"""Static facts for the quality demo: real generic drug names with plausible prices."""

from __future__ import annotations

from typing import NamedTuple


class Drug(NamedTuple):
    code: str
    name: str
    spec: str
    unit: str
    price: float
    atc: str
    grade: str  # none | unrestricted | restricted | special
    vbp: bool
    essential: bool
    route: str
    weight: float  # relative use: skewed, a few drugs dominate
    group: str  # which departments use it most
    ddd_g: float = 0.0  # WHO DDD in grams (antibacterials)
    unit_g: float = 0.0  # grams of ingredient per dispensing unit
    controlled: bool = False


DRUGS = [
    Drug("X0001", "阿莫西林胶囊", "0.25g*24粒", "盒", 8.5, "J01CA04", "unrestricted", True, True, "oral", 30, "abx", 1.5, 6.0),
    Drug("X0002", "头孢呋辛酯片", "0.25g*12片", "盒", 18.6, "J01DC02", "unrestricted", True, True, "oral", 18, "abx", 0.5, 3.0),
    Drug("X0003", "左氧氟沙星片", "0.5g*4片", "盒", 15.2, "J01MA12", "unrestricted", True, True, "oral", 16, "abx", 0.5, 2.0),
    Drug("X0004", "阿奇霉素片", "0.25g*6片", "盒", 12.8, "J01FA10", "unrestricted", True, True, "oral", 14, "abx", 0.3, 1.5),
    Drug("X0005", "注射用头孢曲松钠", "1g", "支", 4.8, "J01DD04", "unrestricted", True, True, "iv", 10, "abx", 2.0, 1.0),
    Drug("X0006", "注射用头孢哌酮钠舒巴坦钠", "1.5g", "支", 25.0, "J01DD62", "restricted", False, False, "iv", 12, "abx", 4.0, 1.0),
    Drug("X0007", "注射用哌拉西林钠他唑巴坦钠", "4.5g", "支", 38.0, "J01CR05", "restricted", True, False, "iv", 8, "abx", 14.0, 4.0),
    Drug("X0008", "莫西沙星片", "0.4g*3片", "盒", 28.5, "J01MA14", "restricted", True, False, "oral", 6, "abx", 0.4, 1.2),
    Drug("X0009", "注射用美罗培南", "0.5g", "支", 68.0, "J01DH02", "special", True, False, "iv", 3, "abx", 3.0, 0.5),
    Drug("X0010", "注射用亚胺培南西司他丁钠", "1g", "支", 95.0, "J01DH51", "special", False, False, "iv", 2, "abx", 2.0, 0.5),
    Drug("X0011", "注射用盐酸万古霉素", "0.5g", "支", 56.0, "J01XA01", "special", False, False, "iv", 1, "abx", 2.0, 0.5),
    Drug("X0101", "苯磺酸氨氯地平片", "5mg*28片", "盒", 3.2, "C08CA01", "none", True, True, "oral", 60, "cardio"),
    Drug("X0102", "苯磺酸氨氯地平片", "5mg*7片（原研）", "盒", 33.6, "C08CA01", "none", False, True, "oral", 25, "cardio"),
    Drug("X0103", "阿托伐他汀钙片", "20mg*7片", "盒", 1.9, "C10AA05", "none", True, True, "oral", 50, "cardio"),
    Drug("X0104", "阿托伐他汀钙片", "20mg*7片（原研）", "盒", 40.2, "C10AA05", "none", False, True, "oral", 20, "cardio"),
    Drug("X0105", "瑞舒伐他汀钙片", "10mg*7片", "盒", 1.2, "C10AA07", "none", True, True, "oral", 25, "cardio"),
    Drug("X0106", "硫酸氢氯吡格雷片", "75mg*7片", "盒", 3.9, "B01AC04", "none", True, True, "oral", 30, "cardio"),
    Drug("X0107", "硫酸氢氯吡格雷片", "75mg*7片（原研）", "盒", 118.0, "B01AC04", "none", False, True, "oral", 15, "cardio"),
    Drug("X0108", "阿司匹林肠溶片", "100mg*30片", "盒", 15.2, "B01AC06", "none", False, True, "oral", 45, "cardio"),
    Drug("X0109", "缬沙坦胶囊", "80mg*7粒", "盒", 3.1, "C09CA03", "none", True, True, "oral", 28, "cardio"),
    Drug("X0110", "厄贝沙坦片", "0.15g*7片", "盒", 2.8, "C09CA04", "none", True, True, "oral", 22, "cardio"),
    Drug("X0111", "琥珀酸美托洛尔缓释片", "47.5mg*7片", "盒", 12.6, "C07AB02", "none", False, True, "oral", 26, "cardio"),
    Drug("X0201", "盐酸二甲双胍片", "0.5g*20片", "盒", 1.8, "A10BA02", "none", True, True, "oral", 40, "endo"),
    Drug("X0202", "阿卡波糖片", "50mg*30片", "盒", 5.4, "A10BF01", "none", True, True, "oral", 22, "endo"),
    Drug("X0203", "甘精胰岛素注射液", "3ml:300单位", "支", 68.0, "A10AE04", "none", True, True, "sc", 15, "endo"),
    Drug("X0204", "门冬胰岛素注射液", "3ml:300单位", "支", 40.0, "A10AB05", "none", True, True, "sc", 12, "endo"),
    Drug("X0301", "奥美拉唑肠溶胶囊", "20mg*14粒", "盒", 4.5, "A02BC01", "none", True, True, "oral", 40, "gi"),
    Drug("X0302", "注射用泮托拉唑钠", "40mg", "支", 18.5, "A02BC02", "none", True, False, "iv", 8, "gi"),
    Drug("X0303", "蒙脱石散", "3g*10袋", "盒", 12.0, "A07BC05", "none", False, True, "oral", 14, "gi"),
    Drug("X0304", "铝碳酸镁咀嚼片", "0.5g*20片", "盒", 16.8, "A02AD04", "none", False, False, "oral", 12, "gi"),
    Drug("X0401", "布洛芬缓释胶囊", "0.3g*20粒", "盒", 12.5, "M01AE01", "none", False, True, "oral", 30, "general"),
    Drug("X0402", "盐酸氨溴索口服溶液", "100ml", "瓶", 16.8, "R05CB06", "none", False, True, "oral", 24, "resp"),
    Drug("X0403", "盐酸氨溴索注射液", "2ml:15mg", "支", 6.5, "R05CB06", "none", False, False, "iv", 6, "resp"),
    Drug("X0404", "布地奈德混悬液", "2ml:1mg", "支", 9.8, "R03BA02", "none", False, True, "inhalation", 20, "resp"),
    Drug("X0405", "0.9%氯化钠注射液", "250ml", "袋", 3.5, "B05XA03", "none", False, True, "iv", 15, "general"),
    Drug("X0406", "5%葡萄糖注射液", "250ml", "袋", 3.6, "B05BA03", "none", False, True, "iv", 8, "general"),
    Drug("X0407", "地佐辛注射液", "1ml:5mg", "支", 48.0, "N02AX", "none", False, False, "im", 8, "surgery"),
    Drug("X0408", "盐酸曲马多缓释片", "0.1g*10片", "盒", 25.0, "N02AX02", "none", False, False, "oral", 4, "surgery", controlled=True),
    Drug("X0409", "艾司唑仑片", "1mg*20片", "盒", 3.5, "N05CD04", "none", False, True, "oral", 8, "neuro", controlled=True),
    Drug("X0501", "注射用奥拉西坦", "1g", "支", 45.0, "N06BX", "none", False, False, "iv", 5, "neuro"),
    Drug("X0502", "长春西汀注射液", "2ml:10mg", "支", 12.0, "N06BX18", "none", False, False, "iv", 6, "neuro"),
    Drug("X0503", "前列地尔注射液", "2ml:10μg", "支", 78.0, "C01EA01", "none", False, False, "iv", 3, "cardio"),
    Drug("X0504", "注射用磷酸肌酸钠", "1g", "支", 32.0, "C01EB06", "none", False, False, "iv", 3, "cardio"),
    Drug("X0505", "依达拉奉注射液", "20ml:30mg", "支", 110.0, "N07XX", "none", False, False, "iv", 2, "neuro"),
    Drug("X0506", "注射用胸腺五肽", "1mg", "支", 42.0, "L03AX", "none", False, False, "iv", 2, "general"),
    Drug("X0601", "复方丹参滴丸", "27mg*180丸", "瓶", 28.0, "", "none", False, True, "oral", 18, "tcm"),
    Drug("X0602", "连花清瘟胶囊", "0.35g*24粒", "盒", 14.8, "", "none", False, True, "oral", 20, "tcm"),
    Drug("X0603", "血塞通注射液", "2ml:100mg", "支", 22.0, "", "none", False, False, "iv", 4, "tcm"),
    Drug("X0604", "银杏叶片", "9.6mg*24片", "盒", 19.5, "", "none", False, True, "oral", 12, "tcm"),
]

#: 中药饮片: (code, name, price per gram).
HERBS = [
    ("H001", "黄芪", 0.12), ("H002", "党参", 0.35), ("H003", "当归", 0.42), ("H004", "白术", 0.20),
    ("H005", "茯苓", 0.10), ("H006", "甘草", 0.08), ("H007", "川芎", 0.18), ("H008", "白芍", 0.15),
    ("H009", "熟地黄", 0.16), ("H010", "陈皮", 0.09), ("H011", "半夏", 0.55), ("H012", "柴胡", 0.38),
    ("H013", "黄芩", 0.22), ("H014", "丹参", 0.14), ("H015", "枸杞子", 0.30),
]

#: 国家重点监控合理用药药品目录（第一批，国卫办医函〔2019〕558号）.
KEY_MONITORED_2019 = [
    "神经节苷脂", "脑苷肌肽", "奥拉西坦", "磷酸肌酸钠", "小牛血清去蛋白", "前列地尔",
    "曲克芦丁脑蛋白水解物", "复合辅酶", "丹参川芎嗪", "转化糖电解质", "鼠神经生长因子",
    "胸腺五肽", "核糖核酸Ⅱ", "依达拉奉", "骨肽", "脑蛋白水解物", "核糖核酸", "长春西汀",
    "小牛血去蛋白提取物", "马来酸桂哌齐特",
]
KEY_MONITORED_CATALOGUE = "第一批（国卫办医函〔2019〕558号）"

#: Department name fragments → the drug group it prescribes most.
DEPARTMENT_GROUPS = [
    ("心", "cardio"), ("内分泌", "endo"), ("消化", "gi"), ("呼吸", "resp"), ("儿", "resp"),
    ("神经", "neuro"), ("脑", "neuro"), ("外", "surgery"), ("骨", "surgery"), ("泌尿", "surgery"),
    ("妇", "surgery"), ("产", "surgery"), ("急诊", "abx"), ("肾", "cardio"), ("中医", "tcm"),
    ("针灸", "tcm"), ("推拿", "tcm"), ("肺", "resp"), ("脾胃", "gi"),
]

DEMO_MONTHS = ("2025-11", "2026-10")
#: Prescriptions per month by hospital level.
VOLUME = {"tertiary": 520, "secondary": 300}
